package client

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// DefaultLease is how long a plan's placements are held when the provider
// block does not say.
const DefaultLease = 30 * time.Minute

// Lease bounds: a lease shorter than a second expires before the apply's
// re-plan; one longer than a week holds capacity for a plan nobody applies.
const (
	MinLease = time.Second
	MaxLease = 7 * 24 * time.Hour
)

// Config is the provider block in remote mode.
type Config struct {
	// URLs of berthd replicas, tried in order; a connection failure moves
	// to the next.
	URLs  []string
	Token string
	// CAPEM verifies berthd's certificate; empty means the system's roots.
	CAPEM string
	// Lease is how long a plan's placements are held (placement_lease).
	Lease time.Duration
	// UserAgent names the provider and its version in berthd's logs.
	UserAgent string
}

// ParseURLs splits a comma-separated list of berthd URLs and checks each
// is an absolute http or https URL.
func ParseURLs(list string) ([]string, error) {
	var urls []string
	for _, raw := range strings.Split(list, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("%q is not a URL: %w", raw, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%q is not an http:// or https:// URL with a host", raw)
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("%q has a query or fragment; give only scheme, host, port and an optional path", raw)
		}
		urls = append(urls, strings.TrimRight(u.String(), "/"))
	}
	if len(urls) == 0 {
		return nil, errors.New("no URL given")
	}
	return urls, nil
}

// ParseLease parses placement_lease and checks its bounds.
func ParseLease(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d < MinLease || d > MaxLease {
		return 0, fmt.Errorf("%s is outside %s..%s", d, MinLease, MaxLease)
	}
	return d, nil
}

// CertPool parses PEM certificates; it fails when there is none.
func CertPool(pem string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(pem)) {
		return nil, errors.New("no PEM certificate found")
	}
	return pool, nil
}
