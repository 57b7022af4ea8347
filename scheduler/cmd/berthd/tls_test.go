package main

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/testenv"
	"github.com/berthsh/terraform-provider-berth/scheduler/api"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// HTTPS with client certificates: a client without one, or with one from
// another CA, is refused at the handshake; the right one still needs a token.
func TestTLSWithClientCA(t *testing.T) {
	env := testenv.Require(t)
	ca, other := testenv.NewCA(t, "berthd-ca"), testenv.NewCA(t, "intruder-ca")
	serverCert, serverKey := ca.Issue(t, "berthd", x509.ExtKeyUsageServerAuth)
	dir := writeFiles(t, map[string]string{"cert.pem": serverCert, "key.pem": serverKey, "ca.pem": ca.PEM})
	clientWith := func(certPEM, keyPEM string) *http.Client {
		cfg := &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}
		if certPEM != "" {
			pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 30 * time.Second}
	}
	good := clientWith(ca.Issue(t, "ci", x509.ExtKeyUsageClientAuth))
	b := start(t, good, []string{"BERTHD_ADMIN_TOKEN=" + adminToken},
		"--data-dir", t.TempDir(), "--engines", enginesFile(t, env),
		"--tls-cert", filepath.Join(dir, "cert.pem"), "--tls-key", filepath.Join(dir, "key.pem"), "--client-ca", filepath.Join(dir, "ca.pem"))
	if b.url[:8] != "https://" {
		t.Fatalf("berthd says it serves %s, want https", b.url)
	}
	b.waitReady(t)
	if a := b.do("GET", api.PathPools, adminToken, "", nil); a.status != http.StatusOK {
		t.Errorf("with the right client certificate and token: %d %s", a.status, a.body)
	}
	if a := b.do("GET", api.PathPools, "", "", nil); a.status != http.StatusUnauthorized {
		t.Errorf("with the right certificate and no token: %d %s, want 401", a.status, a.body)
	}
	for name, client := range map[string]*http.Client{
		"no client certificate":         clientWith("", ""),
		"a certificate from another CA": clientWith(other.Issue(t, "ci", x509.ExtKeyUsageClientAuth)),
	} {
		resp, err := client.Get(b.url + api.PathPools)
		if err == nil {
			_ = resp.Body.Close()
			t.Errorf("%s: got %d, want the TLS handshake refused", name, resp.StatusCode)
		}
	}
}
