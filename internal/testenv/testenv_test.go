package testenv

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fakePEMs are distinct texts standing in for the TLS files: parsing only
// moves them around.
var fakePEMs = map[string]string{
	keyTLSCA:   "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n",
	keyTLSCert: "-----BEGIN CERTIFICATE-----\nCLIENT\n-----END CERTIFICATE-----\n",
	keyTLSKey:  "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n",
}

// writeEnginesJSON writes an engines.json as engines.sh does, into a fresh
// BERTH_ENGINES_DIR, and makes Load read it; edit changes the keys first.
func writeEnginesJSON(t *testing.T, edit func(map[string]string)) string {
	t.Helper()
	dir := t.TempDir()
	values := map[string]string{
		keyDir:                      dir,
		keyScript:                   "/repo/internal/testenv/engines.sh",
		keyEngines:                  "node1,node2,node3",
		keyEndpointPrefix + "node1": "unix://" + dir + "/node1/docker.sock",
		keyEndpointPrefix + "node2": "unix://" + dir + "/node2/docker.sock",
		keyEndpointPrefix + "node3": "unix://" + dir + "/node3/docker.sock",
		keyTLSEngine:                "node3",
		keyTLSEndpoint:              "tcp://127.0.0.1:23456",
		keyImage:                    "berth-test/app:1",
		keyTerraform:                "/usr/local/bin/terraform",
	}
	for key, pem := range fakePEMs {
		path := filepath.Join(dir, strings.ToLower(key)+".pem")
		if err := os.WriteFile(path, []byte(pem), 0o600); err != nil {
			t.Fatal(err)
		}
		values[key] = path
	}
	if edit != nil {
		edit(values)
	}
	data, err := json.Marshal(values)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "engines.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(keyEngines, "") // engines.env not sourced: Load reads the file
	t.Setenv(keyDir, dir)
	return dir
}

func TestLoadReadsEnginesJSON(t *testing.T) {
	dir := writeEnginesJSON(t, nil)
	env, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	want := &Env{
		Dir:    dir,
		Script: "/repo/internal/testenv/engines.sh",
		Engines: []Engine{
			{Name: "node1", Endpoint: "unix://" + dir + "/node1/docker.sock", Socket: "unix://" + dir + "/node1/docker.sock"},
			{Name: "node2", Endpoint: "unix://" + dir + "/node2/docker.sock", Socket: "unix://" + dir + "/node2/docker.sock"},
			{Name: "node3", Endpoint: "tcp://127.0.0.1:23456", Socket: "unix://" + dir + "/node3/docker.sock",
				TLS: &TLS{CAPEM: fakePEMs[keyTLSCA], CertPEM: fakePEMs[keyTLSCert], KeyPEM: fakePEMs[keyTLSKey]}},
		},
		Image:         "berth-test/app:1",
		TerraformPath: "/usr/local/bin/terraform",
	}
	if !reflect.DeepEqual(env, want) {
		t.Fatalf("Load() =\n%+v\nwant\n%+v", env, want)
	}

	wantHCL := `provider "berth" {
  engines = {
    node1 = { endpoint = "unix://` + dir + `/node1/docker.sock" }
    node2 = { endpoint = "unix://` + dir + `/node2/docker.sock" }
    node3 = {
      endpoint = "tcp://127.0.0.1:23456"
      tls = {
        ca_pem   = <<EOT
-----BEGIN CERTIFICATE-----
CA
-----END CERTIFICATE-----
EOT
        cert_pem = <<EOT
-----BEGIN CERTIFICATE-----
CLIENT
-----END CERTIFICATE-----
EOT
        key_pem  = <<EOT
-----BEGIN PRIVATE KEY-----
KEY
-----END PRIVATE KEY-----
EOT
      }
    }
  }
}
`
	if got := env.ProviderHCL(); got != wantHCL {
		t.Errorf("ProviderHCL() =\n%s\nwant\n%s", got, wantHCL)
	}
}

func TestLoadPrefersTheEnvironment(t *testing.T) {
	writeEnginesJSON(t, nil) // present, but sourced variables win
	t.Setenv(keyEngines, "a")
	t.Setenv(keyEndpointPrefix+"a", "tcp://127.0.0.1:2375")
	t.Setenv(keyTLSEngine, "")
	t.Setenv(keyImage, "img:2")
	env, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if want := []Engine{{Name: "a", Endpoint: "tcp://127.0.0.1:2375", Socket: "tcp://127.0.0.1:2375"}}; !reflect.DeepEqual(env.Engines, want) || env.Image != "img:2" {
		t.Errorf("Load() = %+v, want engines %+v and image img:2", env, want)
	}
}

func TestLoadExplainsWhatIsMissing(t *testing.T) {
	tests := map[string]struct {
		edit  func(map[string]string)
		wants []string
	}{
		"image and an endpoint": {
			edit: func(v map[string]string) {
				delete(v, keyImage)
				delete(v, keyEndpointPrefix+"node2")
			},
			wants: []string{keyImage, keyEndpointPrefix + "node2", "make engines-up"},
		},
		"TLS engine not listed": {
			edit:  func(v map[string]string) { v[keyTLSEngine] = "node9" },
			wants: []string{"node9", keyEngines},
		},
		"TLS file gone": {
			edit:  func(v map[string]string) { v[keyTLSKey] = "/nonexistent/key.pem" },
			wants: []string{keyTLSKey, "/nonexistent/key.pem", "make engines-up"},
		},
		"engine named twice": {
			edit:  func(v map[string]string) { v[keyEngines] = "node1,node2,node1" },
			wants: []string{`"node1" twice`},
		},
	}
	for name, test := range tests {
		t.Run(name, func(t *testing.T) {
			writeEnginesJSON(t, test.edit)
			_, err := Load()
			if err == nil {
				t.Fatal("Load() succeeded")
			}
			for _, want := range test.wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Load() error %q does not mention %q", err, want)
				}
			}
		})
	}

	t.Run("no engines at all", func(t *testing.T) {
		dir := t.TempDir()
		t.Setenv(keyEngines, "")
		t.Setenv(keyDir, dir)
		_, err := Load()
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "engines.json")) || !strings.Contains(err.Error(), "make engines-up") {
			t.Errorf("Load() error = %v, want one naming engines.json and make engines-up", err)
		}
	})
}

// TestRunningEngines checks the engines that engines.sh started whenever the
// environment says there are some (make testacc sources engines.env): it
// fails if any does not answer or lacks the test image.
func TestRunningEngines(t *testing.T) {
	if os.Getenv(keyEngines) == "" {
		t.Logf("%s is not set: no running engines to check (the TestLoad tests cover parsing)", keyEngines)
		return
	}
	env := Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	tlsEngines := 0
	for _, engine := range env.Engines {
		if engine.TLS != nil {
			tlsEngines++
			if !strings.HasPrefix(engine.Endpoint, "tcp://") {
				t.Errorf("TLS engine %s has endpoint %s, want tcp://", engine.Name, engine.Endpoint)
			}
		}
		status, body, err := engine.get(ctx, "/images/"+url.PathEscape(env.Image)+"/json")
		if err != nil || status != http.StatusOK {
			t.Errorf("engine %s: image %s: status %d, %v: %s", engine.Name, env.Image, status, err, body)
		}
	}
	if tlsEngines != 1 {
		t.Errorf("%d TLS engines, want 1", tlsEngines)
	}

	// The rendered provider block must be valid HCL for the Terraform CLI.
	if env.TerraformPath == "" {
		t.Fatalf("%s is not set", keyTerraform)
	}
	format := exec.CommandContext(ctx, env.TerraformPath, "fmt", "-")
	format.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE=/dev/null")
	format.Stdin = strings.NewReader(env.ProviderHCL())
	if output, err := format.CombinedOutput(); err != nil {
		t.Errorf("terraform fmt rejects ProviderHCL(): %v\n%s\n%s", err, output, env.ProviderHCL())
	}

	// A lost host: the engine stops answering, then comes back.
	lost := env.Engines[0]
	if err := env.StopEngine(ctx, lost.Name); err != nil {
		t.Fatal(err)
	}
	stoppedErr := lost.Ping(ctx)
	if err := env.StartEngine(ctx, lost.Name); err != nil {
		t.Fatal(err)
	}
	if stoppedErr == nil {
		t.Errorf("engine %s answered while stopped", lost.Name)
	}
	if err := lost.Ping(ctx); err != nil {
		t.Errorf("after StartEngine: %v", err)
	}
}
