package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Require loads the test engines and checks that each answers, failing the
// test with what to do when they are missing: acceptance tests must never
// pass, or skip, without engines.
func Require(t testing.TB) *Env {
	t.Helper()
	env, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, engine := range env.Engines {
		if err := engine.Ping(ctx); err != nil {
			t.Fatalf("testenv: %v; %s", err, howToFix)
		}
	}
	return env
}

// Ping checks that the engine answers on its Endpoint (with TLS when set).
func (e Engine) Ping(ctx context.Context) error {
	status, body, err := e.get(ctx, "/_ping")
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("/_ping answered %d: %s", status, body)
	}
	if err != nil {
		return fmt.Errorf("engine %s at %s does not answer: %w", e.Name, e.Endpoint, err)
	}
	return nil
}

// get requests path from the engine's API, without the Docker client so
// that this package stays a small leaf.
func (e Engine) get(ctx context.Context, path string) (int, string, error) {
	client, base, err := e.httpClient()
	if err != nil {
		return 0, "", err
	}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, strings.TrimSpace(string(body)), err
}

// httpClient returns a client for the engine's Endpoint and the base URL to
// use with it.
func (e Engine) httpClient() (*http.Client, string, error) {
	u, err := url.Parse(e.Endpoint)
	if err != nil {
		return nil, "", fmt.Errorf("endpoint %q: %w", e.Endpoint, err)
	}
	transport := &http.Transport{}
	switch u.Scheme {
	case "unix":
		var dialer net.Dialer
		transport.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", u.Path)
		}
		return &http.Client{Transport: transport}, "http://docker", nil
	case "tcp":
		if e.TLS == nil {
			return &http.Client{Transport: transport}, "http://" + u.Host, nil
		}
		config, err := e.TLS.clientConfig()
		if err != nil {
			return nil, "", err
		}
		transport.TLSClientConfig = config
		return &http.Client{Transport: transport}, "https://" + u.Host, nil
	default:
		return nil, "", fmt.Errorf("endpoint %q: testenv speaks unix:// and tcp:// only", e.Endpoint)
	}
}

func (c *TLS) clientConfig() (*tls.Config, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(c.CAPEM)) {
		return nil, errors.New("TLS CA: no certificate in PEM")
	}
	pair, err := tls.X509KeyPair([]byte(c.CertPEM), []byte(c.KeyPEM))
	if err != nil {
		return nil, fmt.Errorf("TLS client certificate: %w", err)
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// StopEngine stops one engine, as if its host were lost: its endpoint stops
// answering until StartEngine. Its containers stop with it.
func (e *Env) StopEngine(ctx context.Context, name string) error {
	return e.runScript(ctx, "stop", name)
}

// StartEngine starts an engine that StopEngine stopped, with the same
// endpoint and data; containers with a restart policy start again.
func (e *Env) StartEngine(ctx context.Context, name string) error {
	return e.runScript(ctx, "start", name)
}

func (e *Env) runScript(ctx context.Context, command, name string) error {
	if _, ok := e.Engine(name); !ok {
		return fmt.Errorf("testenv: %s %s: no such engine", command, name)
	}
	if e.Script == "" || e.Dir == "" {
		return fmt.Errorf("testenv: %s %s: %s and %s are needed to run engines.sh; %s", command, name, keyScript, keyDir, howToFix)
	}
	cmd := exec.CommandContext(ctx, "bash", e.Script, command, name)
	cmd.Env = append(os.Environ(), keyDir+"="+e.Dir)
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("testenv: engines.sh %s %s: %w: %s", command, name, err, strings.TrimSpace(string(output)))
	}
	return nil
}
