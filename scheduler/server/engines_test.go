package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadEngines(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"ca.pem": "CA", "cert.pem": "CERT", "key.pem": "KEY"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "engines.json")
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"node1": {"endpoint": "unix:///run/docker.sock", "address": "10.0.0.11"},
	        "node2": {"endpoint": "tcp://10.0.0.12:2376", "tls": {"ca_file": "ca.pem", "cert_file": "cert.pem", "key_file": "` + filepath.Join(dir, "key.pem") + `"}}}`)
	cfgs, err := LoadEngines(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfgs) != 2 || cfgs[0].Name != "node1" || cfgs[0].TLS != nil || cfgs[1].TLS == nil || cfgs[1].TLS.CAPEM != "CA" || cfgs[1].TLS.CertPEM != "CERT" || cfgs[1].TLS.KeyPEM != "KEY" {
		t.Errorf("LoadEngines = %+v", cfgs)
	}
	for bad, want := range map[string]string{
		`{"node1": {}}`: "no endpoint",
		`{"node1": {"endpoint": "tcp://x:1", "tls": {"ca_file": "missing.pem"}}}`: "ca_file",
		`{"node1": {"endpoint": "unix:///x", "tls_ca": "x"}}`:                     "unknown field",
		`{}`:        "no engine",
		`["node1"]`: "want",
	} {
		write(bad)
		if _, err := LoadEngines(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadEngines(%s) = %v, want an error mentioning %q", bad, err, want)
		}
	}
}
