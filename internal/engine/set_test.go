package engine

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/testenv"
)

func TestNewSetRejectsBadEndpoints(t *testing.T) {
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{Name: "node1", Endpoint: "http://10.0.0.1:2375"}, `engine node1: endpoint "http://10.0.0.1:2375": unsupported scheme "http" (want unix, tcp or ssh)`},
		{Config{Name: "node1", Endpoint: "/var/run/docker.sock"}, `unsupported scheme ""`},
		{Config{Name: "node1", Endpoint: "unix://var/run/docker.sock"}, "absolute socket path"},
		{Config{Name: "node2", Endpoint: "tcp://10.0.0.12"}, `engine node2: endpoint "tcp://10.0.0.12": want host:port`},
		{Config{Name: "node2", Endpoint: "tcp://10.0.0.12:2376/v1"}, "takes no path"},
		{Config{Name: "node3", Endpoint: "ssh://"}, "want a host"},
		{Config{Name: "node3", Endpoint: "ssh://ops:secret@10.0.0.13"}, "passwords are not supported"},
		{Config{Name: "node1", Endpoint: "unix:///var/run/docker.sock", TLS: &TLSConfig{}}, "engine node1: tls is only supported with tcp:// endpoints, not unix://"},
		{Config{Name: "node3", Endpoint: "ssh://ops@10.0.0.13", TLS: &TLSConfig{}}, "tls is only supported with tcp://"},
		{Config{Endpoint: "unix:///var/run/docker.sock"}, "has no name"},
	}
	for _, c := range cases {
		_, err := NewSet([]Config{c.cfg})
		if err == nil {
			t.Errorf("%+v: accepted", c.cfg)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %q does not contain %q", c.cfg, err, c.want)
		}
	}
}

func TestSetNamesAndGet(t *testing.T) {
	set, err := NewSet([]Config{
		{Name: "node3", Endpoint: "ssh://ops@10.0.0.13"},
		{Name: "node1", Endpoint: "unix:///var/run/docker.sock"},
		{Name: "node2", Endpoint: "tcp://10.0.0.12:2376"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	if got := set.Names(); !reflect.DeepEqual(got, []string{"node1", "node2", "node3"}) {
		t.Fatalf("Names() = %v", got)
	}
	e, err := set.Get("node2")
	if err != nil || e.Name() != "node2" || e.Endpoint() != "tcp://10.0.0.12:2376" {
		t.Fatalf("Get(node2) = %v, %v", e, err)
	}
	again, _ := set.Get("node2")
	if again != e {
		t.Fatal("Get should return the one shared engine")
	}
	_, err = set.Get("node9")
	if err == nil || !strings.Contains(err.Error(), `unknown engine "node9" (engines in the provider block: node1, node2, node3)`) {
		t.Fatalf("Get(node9) error = %v", err)
	}
	if _, err := NewSet([]Config{{Name: "a", Endpoint: "unix:///a.sock"}, {Name: "a", Endpoint: "unix:///b.sock"}}); err == nil ||
		!strings.Contains(err.Error(), "engine a is declared twice") {
		t.Fatalf("duplicate names: %v", err)
	}
}

func TestInfoNamesUnreachableEngine(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "missing.sock")
	set, err := NewSet([]Config{{Name: "node2", Endpoint: "unix://" + socket}})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	e, _ := set.Get("node2")
	_, err = e.Info(context.Background())
	want := fmt.Sprintf("engine node2 (unix://%s) unreachable: ", socket)
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %v, want prefix %q", err, want)
	}
}

// testPKI is a throwaway CA with a server certificate for 127.0.0.1 and a
// client certificate.
type testPKI struct {
	caPEM, serverCertPEM, serverKeyPEM, clientCertPEM, clientKeyPEM string
	caPool                                                          *x509.CertPool
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	ca := testenv.NewCA(t, "berth test CA")
	p := testPKI{caPEM: ca.PEM, caPool: ca.Pool}
	p.serverCertPEM, p.serverKeyPEM = ca.Issue(t, "berth test", x509.ExtKeyUsageServerAuth)
	p.clientCertPEM, p.clientKeyPEM = ca.Issue(t, "berth test", x509.ExtKeyUsageClientAuth)
	return p
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func keyPEM(t *testing.T, key *ecdsa.PrivateKey) string {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemText("PRIVATE KEY", der)
}

func pemText(kind string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}))
}

func TestTLSConfigFromPEM(t *testing.T) {
	pki := newTestPKI(t)
	cfg, err := tlsClientConfig("node2", "127.0.0.1", &TLSConfig{CAPEM: pki.caPEM, CertPEM: pki.clientCertPEM, KeyPEM: pki.clientKeyPEM})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 || cfg.ServerName != "127.0.0.1" || len(cfg.Certificates) != 1 || cfg.RootCAs == nil || cfg.InsecureSkipVerify {
		t.Fatalf("unexpected config: min %x server %q certs %d roots %v", cfg.MinVersion, cfg.ServerName, len(cfg.Certificates), cfg.RootCAs)
	}
	if !cfg.RootCAs.Equal(pki.caPool) {
		t.Fatal("RootCAs is not the given CA")
	}

	otherKey := keyPEM(t, newKey(t))
	for _, c := range []struct {
		material TLSConfig
		want     string
	}{
		{TLSConfig{CAPEM: "not pem"}, "engine node2: tls ca_pem: no valid PEM certificate found"},
		{TLSConfig{CAPEM: pki.caPEM, CertPEM: "junk", KeyPEM: pki.clientKeyPEM}, "engine node2: tls cert_pem: no PEM CERTIFICATE block"},
		{TLSConfig{CAPEM: pki.caPEM, CertPEM: pemText("CERTIFICATE", []byte("garbage")), KeyPEM: pki.clientKeyPEM}, "engine node2: tls cert_pem: invalid certificate"},
		{TLSConfig{CAPEM: pki.caPEM, CertPEM: pki.clientCertPEM, KeyPEM: "junk"}, "engine node2: tls key_pem: no PEM PRIVATE KEY block"},
		{TLSConfig{CAPEM: pki.caPEM, CertPEM: pki.clientCertPEM, KeyPEM: pemText("PRIVATE KEY", []byte("garbage"))}, "engine node2: tls key_pem: not a PKCS#8"},
		{TLSConfig{CAPEM: pki.caPEM, CertPEM: pki.clientCertPEM, KeyPEM: otherKey}, "engine node2: tls cert_pem and key_pem do not form a key pair"},
		{TLSConfig{CAPEM: pki.caPEM, KeyPEM: pki.clientKeyPEM}, "engine node2: tls key_pem is set but cert_pem is empty"},
		{TLSConfig{CAPEM: pki.caPEM, CertPEM: pki.clientCertPEM}, "engine node2: tls cert_pem is set but key_pem is empty"},
	} {
		_, err := NewSet([]Config{{Name: "node2", Endpoint: "tcp://127.0.0.1:2376", TLS: &c.material}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "BEGIN") {
			t.Errorf("error echoes PEM material: %v", err)
		}
	}
}

// fakeEngine answers the two calls Info makes, over mutual TLS.
func fakeEngine(t *testing.T, pki testPKI) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/_ping", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("API-Version", "1.41")
		fmt.Fprint(w, "OK")
	})
	mux.HandleFunc("/v1.41/info", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"NCPU":4,"MemTotal":8589934592,"ServerVersion":"20.10.24"}`)
	})
	server := httptest.NewUnstartedServer(mux)
	serverPair, err := tls.X509KeyPair([]byte(pki.serverCertPEM), []byte(pki.serverKeyPEM))
	if err != nil {
		t.Fatal(err)
	}
	server.TLS = &tls.Config{
		Certificates: []tls.Certificate{serverPair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pki.caPool,
		MinVersion:   tls.VersionTLS12,
	}
	server.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	server.StartTLS()
	t.Cleanup(server.Close)
	return "tcp://" + server.Listener.Addr().String()
}

func TestInfoOverVerifiedTLS(t *testing.T) {
	pki := newTestPKI(t)
	endpoint := fakeEngine(t, pki)
	stranger := newTestPKI(t)

	engineWith := func(material TLSConfig) *Engine {
		set, err := NewSet([]Config{{Name: "node2", Endpoint: endpoint, TLS: &material}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { set.Close() })
		e, _ := set.Get("node2")
		return e
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	info, err := engineWith(TLSConfig{CAPEM: pki.caPEM, CertPEM: pki.clientCertPEM, KeyPEM: pki.clientKeyPEM}).Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := Info{NCPU: 4, MemTotal: 8 << 30, ServerVersion: "20.10.24", APIVersion: "1.41"}
	if info != want {
		t.Fatalf("Info() = %+v, want %+v", info, want)
	}

	// A server certificate from another CA must be refused.
	_, err = engineWith(TLSConfig{CAPEM: stranger.caPEM, CertPEM: stranger.clientCertPEM, KeyPEM: stranger.clientKeyPEM}).Info(ctx)
	wantPrefix := fmt.Sprintf("engine node2 (%s) unreachable: failed TLS verification ", endpoint)
	if err == nil || !strings.HasPrefix(err.Error(), wantPrefix) {
		t.Fatalf("untrusted server: error %v, want prefix %q", err, wantPrefix)
	}

	// The engine demands a client certificate.
	if _, err = engineWith(TLSConfig{CAPEM: pki.caPEM}).Info(ctx); err == nil || !strings.Contains(err.Error(), "engine node2") {
		t.Fatalf("without a client certificate: error %v", err)
	}
}

// TestSSHCommandLine runs a stand-in ssh from PATH that records its
// arguments: no ssh server is needed.
func TestSSHCommandLine(t *testing.T) {
	dir := t.TempDir()
	argsFile := filepath.Join(dir, "args")
	script := fmt.Sprintf("#!/bin/sh\nprintf '%%s\\n' \"$@\" > %s\necho 'ssh: connect to host 10.0.0.13: refused' >&2\nexit 255\n", argsFile)
	if err := os.WriteFile(filepath.Join(dir, "ssh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))

	for endpoint, wantArgs := range map[string][]string{
		"ssh://ops@10.0.0.13": {
			"-l", "ops", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-T", "--", "10.0.0.13", "docker system dial-stdio"},
		"ssh://ops@10.0.0.13:2222/run/docker.sock": {
			"-l", "ops", "-p", "2222", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-T", "--", "10.0.0.13",
			"docker '--host=unix:///run/docker.sock' system dial-stdio"},
	} {
		set, err := NewSet([]Config{{Name: "node3", Endpoint: endpoint}})
		if err != nil {
			t.Fatal(err)
		}
		e, _ := set.Get("node3")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = e.Info(ctx)
		cancel()
		set.Close()
		wantPrefix := fmt.Sprintf("engine node3 (%s) unreachable: ", endpoint)
		if err == nil || !strings.HasPrefix(err.Error(), wantPrefix) {
			t.Fatalf("%s: error %v, want prefix %q", endpoint, err, wantPrefix)
		}
		recorded, err := os.ReadFile(argsFile)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Split(strings.TrimSuffix(string(recorded), "\n"), "\n"); !reflect.DeepEqual(got, wantArgs) {
			t.Errorf("%s: ssh ran with\n%q\nwant\n%q", endpoint, got, wantArgs)
		}
	}
}
