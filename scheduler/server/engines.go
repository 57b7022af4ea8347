package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
)

// engineFileEntry is one engine of engines.json: the provider block's
// engines, with TLS material as files.
type engineFileEntry struct {
	Endpoint string `json:"endpoint"`
	// Address is where the engine's published ports are reached; accepted
	// as in the provider block.
	Address string         `json:"address"`
	TLS     *engineFileTLS `json:"tls"`
}

type engineFileTLS struct {
	CAFile   string `json:"ca_file"`
	CertFile string `json:"cert_file"`
	KeyFile  string `json:"key_file"`
}

// LoadEngines reads engines.json: {"node1": {"endpoint": "unix:///…"},
// "node2": {"endpoint": "tcp://…", "tls": {"ca_file": …, "cert_file": …,
// "key_file": …}}}. Relative file names are relative to engines.json.
func LoadEngines(path string) ([]engine.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("engines: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	var file map[string]engineFileEntry
	if err := dec.Decode(&file); err != nil {
		return nil, fmt.Errorf("engines: %s: %w (want {\"node1\": {\"endpoint\": \"unix:///...\"}, ...})", path, err)
	}
	if len(file) == 0 {
		return nil, fmt.Errorf("engines: %s lists no engine", path)
	}
	names := make([]string, 0, len(file))
	for name := range file {
		names = append(names, name)
	}
	sort.Strings(names)
	var cfgs []engine.Config
	var errs []error
	for _, name := range names {
		entry := file[name]
		cfg := engine.Config{Name: name, Endpoint: entry.Endpoint}
		if entry.Endpoint == "" {
			errs = append(errs, fmt.Errorf("engine %s has no endpoint", name))
			continue
		}
		if entry.TLS != nil {
			pems, err := readPEMs(filepath.Dir(path), entry.TLS)
			if err != nil {
				errs = append(errs, fmt.Errorf("engine %s: %w", name, err))
				continue
			}
			cfg.TLS = pems
		}
		cfgs = append(cfgs, cfg)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("engines: %s: %w", path, err)
	}
	return cfgs, nil
}

func readPEMs(dir string, files *engineFileTLS) (*engine.TLSConfig, error) {
	var errs []error
	read := func(what, name string) string {
		if name == "" {
			return ""
		}
		if !filepath.IsAbs(name) {
			name = filepath.Join(dir, name)
		}
		data, err := os.ReadFile(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
		return string(data)
	}
	pems := &engine.TLSConfig{CAPEM: read("ca_file", files.CAFile), CertPEM: read("cert_file", files.CertFile), KeyPEM: read("key_file", files.KeyFile)}
	return pems, errors.Join(errs...)
}
