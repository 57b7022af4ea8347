package testenv

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// WriteBerthdEngines writes the running engines as berthd's engines.json
// (DESIGN.md: {"node1": {"endpoint": …}, "node3": {"endpoint": "tcp://…",
// "tls": {"ca_file": …, "cert_file": …, "key_file": …}}}) into dir, with
// the TLS engine's PEMs beside it, and returns its path.
func (e *Env) WriteBerthdEngines(dir string) (string, error) {
	type tlsFiles struct {
		CAFile   string `json:"ca_file"`
		CertFile string `json:"cert_file"`
		KeyFile  string `json:"key_file"`
	}
	type entry struct {
		Endpoint string    `json:"endpoint"`
		TLS      *tlsFiles `json:"tls,omitempty"`
	}
	file := map[string]entry{}
	for _, eng := range e.Engines {
		en := entry{Endpoint: eng.Endpoint}
		if eng.TLS != nil {
			en.TLS = &tlsFiles{CAFile: eng.Name + "-ca.pem", CertFile: eng.Name + "-cert.pem", KeyFile: eng.Name + "-key.pem"}
			for name, pem := range map[string]string{en.TLS.CAFile: eng.TLS.CAPEM, en.TLS.CertFile: eng.TLS.CertPEM, en.TLS.KeyFile: eng.TLS.KeyPEM} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(pem), 0o600); err != nil {
					return "", fmt.Errorf("testenv: %w", err)
				}
			}
		}
		file[eng.Name] = en
	}
	data, err := json.MarshalIndent(file, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "engines.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	return path, nil
}
