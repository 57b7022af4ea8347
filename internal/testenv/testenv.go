package testenv

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Keys of engines.env and engines.json, as written by engines.sh.
const (
	keyDir            = "BERTH_ENGINES_DIR"
	keyScript         = "BERTH_ENGINES_SCRIPT"
	keyEngines        = "BERTH_TEST_ENGINES"
	keyEndpointPrefix = "BERTH_TEST_ENDPOINT_"
	keyTLSEngine      = "BERTH_TEST_TLS_ENGINE"
	keyTLSEndpoint    = "BERTH_TEST_TLS_ENDPOINT"
	keyTLSCA          = "BERTH_TEST_TLS_CA"
	keyTLSCert        = "BERTH_TEST_TLS_CERT"
	keyTLSKey         = "BERTH_TEST_TLS_KEY"
	keyImage          = "BERTH_TEST_IMAGE"
	keyTerraform      = "TF_ACC_TERRAFORM_PATH"

	defaultDir = "/tmp/berth-engines"
	howToFix   = `run "make engines-up" (or: bash internal/testenv/engines.sh up && source /tmp/berth-engines/engines.env)`
)

// Env is the set of running test engines.
type Env struct {
	// Dir is the engines' directory (BERTH_ENGINES_DIR).
	Dir string
	// Script is engines.sh, which StopEngine and StartEngine run.
	Script string
	// Engines in the order engines.sh started them: node1, node2, ...
	Engines []Engine
	// Image is the test image present on every engine (berth-test/app:1).
	Image string
	// TerraformPath is the Terraform CLI for acceptance tests; empty when
	// the environment does not name one.
	TerraformPath string
}

// Engine is one test engine.
type Engine struct {
	Name string
	// Endpoint is how the provider should reach the engine: tcp:// with TLS
	// for the TLS engine, its unix:// socket for the others.
	Endpoint string
	// Socket is the engine's unix:// socket; every engine has one, the TLS
	// engine included, for tests that inspect engines directly.
	Socket string
	// TLS is set for the engine that listens with verified TLS.
	TLS *TLS
}

// TLS holds PEM-encoded client credentials and the CA that signed the
// engine's server certificate.
type TLS struct {
	CAPEM   string
	CertPEM string
	KeyPEM  string
}

// Load describes the running test engines, from the environment when
// BERTH_TEST_ENGINES is set (engines.env was sourced), otherwise from
// engines.json in BERTH_ENGINES_DIR. Its errors say what is missing and how
// to start the engines.
func Load() (*Env, error) {
	if os.Getenv(keyEngines) != "" {
		return parse(os.LookupEnv, "the environment")
	}
	dir := os.Getenv(keyDir)
	if dir == "" {
		dir = defaultDir
	}
	path := filepath.Join(dir, "engines.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("testenv: no test engines: %s is not set and %w; %s", keyEngines, err, howToFix)
	}
	var values map[string]string
	if err := json.Unmarshal(data, &values); err != nil {
		return nil, fmt.Errorf("testenv: %s: %w; %s", path, err, howToFix)
	}
	return parse(func(key string) (string, bool) {
		value, ok := values[key]
		return value, ok
	}, path)
}

// parse builds an Env from engines.sh's keys, reporting every missing key at
// once.
func parse(lookup func(string) (string, bool), source string) (*Env, error) {
	var missing []string
	get := func(key string) string {
		value, ok := lookup(key)
		if !ok || value == "" {
			missing = append(missing, key)
		}
		return value
	}
	optional := func(key string) string {
		value, _ := lookup(key)
		return value
	}

	env := &Env{
		Dir:           optional(keyDir),
		Script:        optional(keyScript),
		Image:         get(keyImage),
		TerraformPath: optional(keyTerraform),
	}
	names := strings.Split(get(keyEngines), ",")
	for _, name := range names {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if slices.ContainsFunc(env.Engines, func(e Engine) bool { return e.Name == name }) {
			return nil, fmt.Errorf("testenv: %s names engine %q twice (in %s)", keyEngines, name, source)
		}
		socket := get(keyEndpointPrefix + name)
		env.Engines = append(env.Engines, Engine{Name: name, Endpoint: socket, Socket: socket})
	}

	if tlsEngine := optional(keyTLSEngine); tlsEngine != "" {
		i := slices.IndexFunc(env.Engines, func(e Engine) bool { return e.Name == tlsEngine })
		if i < 0 {
			return nil, fmt.Errorf("testenv: %s=%s is not one of %s (in %s)", keyTLSEngine, tlsEngine, keyEngines, source)
		}
		env.Engines[i].Endpoint = get(keyTLSEndpoint)
		files := map[string]string{keyTLSCA: get(keyTLSCA), keyTLSCert: get(keyTLSCert), keyTLSKey: get(keyTLSKey)}
		if len(missing) == 0 {
			pems, err := readFiles(files)
			if err != nil {
				return nil, fmt.Errorf("testenv: TLS credentials of %s: %w; %s", tlsEngine, err, howToFix)
			}
			env.Engines[i].TLS = &TLS{CAPEM: pems[keyTLSCA], CertPEM: pems[keyTLSCert], KeyPEM: pems[keyTLSKey]}
		}
	}

	if len(missing) > 0 {
		return nil, fmt.Errorf("testenv: %s lacks %s; %s", source, strings.Join(missing, ", "), howToFix)
	}
	if len(env.Engines) == 0 {
		return nil, fmt.Errorf("testenv: %s lists no engines in %s; %s", source, keyEngines, howToFix)
	}
	return env, nil
}

// readFiles reads each named file, keyed as given.
func readFiles(paths map[string]string) (map[string]string, error) {
	contents := make(map[string]string, len(paths))
	var errs []error
	for key, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
			continue
		}
		contents[key] = string(data)
	}
	return contents, errors.Join(errs...)
}

// Engine returns the engine with the given name.
func (e *Env) Engine(name string) (Engine, bool) {
	i := slices.IndexFunc(e.Engines, func(engine Engine) bool { return engine.Name == name })
	if i < 0 {
		return Engine{}, false
	}
	return e.Engines[i], true
}
