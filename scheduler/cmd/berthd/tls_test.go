package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/testenv"
	"github.com/berthsh/terraform-provider-berth/scheduler/api"
)

// authority is a throwaway CA for the TLS tests.
type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newAuthority(t *testing.T, name string) *authority {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &authority{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue signs a leaf certificate; it returns the cert and key as PEM.
func (a *authority) issue(t *testing.T, name string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

func writeFiles(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// HTTPS with client certificates: a client without one, or with one from
// another CA, is refused at the handshake; the right one still needs a token.
func TestTLSWithClientCA(t *testing.T) {
	env := testenv.Require(t)
	ca, other := newAuthority(t, "berthd-ca"), newAuthority(t, "intruder-ca")
	serverCert, serverKey := ca.issue(t, "berthd", x509.ExtKeyUsageServerAuth)
	dir := writeFiles(t, map[string][]byte{"cert.pem": serverCert, "key.pem": serverKey, "ca.pem": ca.pem})
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	clientWith := func(certPEM, keyPEM []byte) *http.Client {
		cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		if certPEM != nil {
			pair, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 30 * time.Second}
	}
	good := clientWith(ca.issue(t, "ci", x509.ExtKeyUsageClientAuth))
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
		"no client certificate":         clientWith(nil, nil),
		"a certificate from another CA": clientWith(other.issue(t, "ci", x509.ExtKeyUsageClientAuth)),
	} {
		resp, err := client.Get(b.url + api.PathPools)
		if err == nil {
			_ = resp.Body.Close()
			t.Errorf("%s: got %d, want the TLS handshake refused", name, resp.StatusCode)
		}
	}
}
