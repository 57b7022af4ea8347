package engine

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/docker/cli/cli/connhelper"
	"github.com/docker/docker/client"
)

// Set holds the engines of one provider block. Clients are created once,
// connect lazily and are safe for concurrent use.
type Set struct {
	engines map[string]*Engine
	names   []string
}

// NewSet validates every engine's configuration and builds its client
// without connecting, so a provider can start while an engine is down.
func NewSet(cfgs []Config) (*Set, error) {
	s := &Set{engines: make(map[string]*Engine, len(cfgs))}
	for _, cfg := range cfgs {
		if cfg.Name == "" {
			return nil, closeOnError(s, fmt.Errorf("engine with endpoint %q has no name", cfg.Endpoint))
		}
		if _, dup := s.engines[cfg.Name]; dup {
			return nil, closeOnError(s, fmt.Errorf("engine %s is declared twice", cfg.Name))
		}
		e, err := newEngine(cfg)
		if err != nil {
			return nil, closeOnError(s, err)
		}
		s.engines[cfg.Name] = e
		s.names = append(s.names, cfg.Name)
	}
	sort.Strings(s.names)
	return s, nil
}

func closeOnError(s *Set, err error) error {
	return errors.Join(err, s.Close())
}

// Get returns the named engine.
func (s *Set) Get(name string) (*Engine, error) {
	if e, ok := s.engines[name]; ok {
		return e, nil
	}
	known := "none"
	if len(s.names) > 0 {
		known = strings.Join(s.names, ", ")
	}
	return nil, fmt.Errorf("unknown engine %q (engines in the provider block: %s)", name, known)
}

// Names lists the engines, sorted.
func (s *Set) Names() []string {
	return append([]string(nil), s.names...)
}

// Close releases every client's idle connections.
func (s *Set) Close() error {
	var errs []error
	for _, e := range s.engines {
		errs = append(errs, e.api.Close())
	}
	return errors.Join(errs...)
}

// Dials over unix and tcp time out after 10s, as with the Docker client's
// own dialer; the handshake and ssh connection get the same bound.
const (
	dialTimeout         = 10 * time.Second
	tlsHandshakeTimeout = 10 * time.Second
	sshConnectTimeout   = "10" // seconds, for ssh -o ConnectTimeout
)

func newEngine(cfg Config) (*Engine, error) {
	u, err := parseEndpoint(cfg)
	if err != nil {
		return nil, fmt.Errorf("engine %s: endpoint %q: %w", cfg.Name, cfg.Endpoint, err)
	}
	if cfg.TLS != nil && u.Scheme != "tcp" {
		return nil, fmt.Errorf("engine %s: tls is only supported with tcp:// endpoints, not %s://", cfg.Name, u.Scheme)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	api, d, err := newClient(cfg, u)
	if err != nil {
		return nil, err
	}
	return &Engine{name: cfg.Name, endpoint: cfg.Endpoint, address: reachAddress(cfg), api: api, dialer: d, pull: defaultPullRetry(), timeout: timeout}, nil
}

func parseEndpoint(cfg Config) (*url.URL, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "unix":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") {
			return nil, errors.New("want an absolute socket path, as in unix:///var/run/docker.sock")
		}
	case "tcp":
		if _, port, err := net.SplitHostPort(u.Host); err != nil || port == "" {
			return nil, errors.New("want host:port, as in tcp://10.0.0.12:2376")
		}
		if u.Path != "" && u.Path != "/" {
			return nil, errors.New("a tcp endpoint takes no path")
		}
	case "ssh":
		if u.Hostname() == "" {
			return nil, errors.New("want a host, as in ssh://user@host")
		}
		if _, hasPassword := u.User.Password(); hasPassword {
			return nil, errors.New("passwords are not supported in ssh endpoints; use an ssh key or agent")
		}
	default:
		return nil, fmt.Errorf("unsupported scheme %q (want unix, tcp or ssh)", u.Scheme)
	}
	return u, nil
}

func newClient(cfg Config, u *url.URL) (*client.Client, *dialer, error) {
	// Terraform runs many operations at once against each engine: keep more
	// idle connections than the Docker client's default of 2 per host.
	transport := &http.Transport{
		MaxIdleConns:        64,
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: tlsHandshakeTimeout,
	}
	opts := []client.Opt{
		client.WithHTTPClient(&http.Client{Transport: transport, CheckRedirect: client.CheckRedirect}),
		client.WithAPIVersionNegotiation(),
	}
	d := &dialer{}
	if u.Scheme == "ssh" {
		helper, err := connhelper.GetConnectionHelperWithSSHOpts(cfg.Endpoint, sshOptions())
		if err != nil {
			return nil, nil, fmt.Errorf("engine %s: endpoint %q: %w", cfg.Name, cfg.Endpoint, err)
		}
		d.dial = helper.Dialer
		opts = append(opts, client.WithHost(helper.Host))
	} else {
		if cfg.TLS != nil {
			tlsConfig, err := tlsClientConfig(cfg.Name, u.Hostname(), cfg.TLS)
			if err != nil {
				return nil, nil, err
			}
			transport.TLSClientConfig = tlsConfig
		}
		// The Docker client's own dialer, for unix and tcp alike.
		network, address := u.Scheme, u.Host
		if network == "unix" {
			address = u.Path
		}
		plain := &net.Dialer{Timeout: dialTimeout}
		d.dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return plain.DialContext(ctx, network, address)
		}
		opts = append(opts, client.WithHost(cfg.Endpoint))
	}
	opts = append(opts, client.WithDialContext(d.DialContext))
	api, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("engine %s: endpoint %q: %w", cfg.Name, cfg.Endpoint, err)
	}
	if u.Scheme == "ssh" {
		// Requests travel through the ssh pipe; an HTTP proxy from the
		// environment must not be applied to them.
		transport.Proxy = nil
	}
	return api, d, nil
}

// sshOptions are passed to ssh before the destination. BatchMode makes a
// missing key fail instead of prompting, which would hang Terraform.
func sshOptions() []string {
	return []string{"-o", "BatchMode=yes", "-o", "ConnectTimeout=" + sshConnectTimeout}
}

// tlsClientConfig builds a verified TLS client configuration from PEM
// material. Errors name the engine and the offending attribute.
func tlsClientConfig(engine, serverName string, material *TLSConfig) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if material.CAPEM != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(material.CAPEM)) {
			return nil, fmt.Errorf("engine %s: tls ca_pem: no valid PEM certificate found", engine)
		}
		cfg.RootCAs = pool
	}
	switch {
	case material.CertPEM == "" && material.KeyPEM == "":
		return cfg, nil // server verification only, no client certificate
	case material.CertPEM == "":
		return nil, fmt.Errorf("engine %s: tls key_pem is set but cert_pem is empty", engine)
	case material.KeyPEM == "":
		return nil, fmt.Errorf("engine %s: tls cert_pem is set but key_pem is empty", engine)
	}
	if err := checkCertificatePEM(material.CertPEM); err != nil {
		return nil, fmt.Errorf("engine %s: tls cert_pem: %w", engine, err)
	}
	if err := checkPrivateKeyPEM(material.KeyPEM); err != nil {
		return nil, fmt.Errorf("engine %s: tls key_pem: %w", engine, err)
	}
	pair, err := tls.X509KeyPair([]byte(material.CertPEM), []byte(material.KeyPEM))
	if err != nil {
		return nil, fmt.Errorf("engine %s: tls cert_pem and key_pem do not form a key pair: %w", engine, err)
	}
	cfg.Certificates = []tls.Certificate{pair}
	return cfg, nil
}

func checkCertificatePEM(text string) error {
	block, _ := pem.Decode([]byte(text))
	if block == nil || block.Type != "CERTIFICATE" {
		return errors.New("no PEM CERTIFICATE block found")
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		return fmt.Errorf("invalid certificate: %w", err)
	}
	return nil
}

// checkPrivateKeyPEM never echoes key material in its errors.
func checkPrivateKeyPEM(text string) error {
	block, _ := pem.Decode([]byte(text))
	if block == nil || !strings.HasSuffix(block.Type, "PRIVATE KEY") {
		return errors.New("no PEM PRIVATE KEY block found")
	}
	if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		return nil
	}
	if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return nil
	}
	if _, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return nil
	}
	return errors.New("not a PKCS#8, PKCS#1 or EC private key")
}
