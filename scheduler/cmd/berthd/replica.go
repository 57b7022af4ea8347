package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/berthsh/terraform-provider-berth/scheduler/metrics"
	"github.com/berthsh/terraform-provider-berth/scheduler/replica"
	"github.com/berthsh/terraform-provider-berth/scheduler/server"
	"github.com/berthsh/terraform-provider-berth/scheduler/status"
	"github.com/berthsh/terraform-provider-berth/scheduler/store"
)

// etcdFlags choose the store: bolt in --data-dir (one berthd), or etcd
// (replicas electing a leader).
type etcdFlags struct {
	store, endpoints, prefix string
	ca, cert, key            string
	leaderTTL                time.Duration
}

func (f *etcdFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.store, "store", "bolt", "bolt (one berthd, --data-dir) or etcd (replicas, --etcd-endpoints)")
	fs.StringVar(&f.endpoints, "etcd-endpoints", "", "etcd client URLs, comma-separated (with --store etcd)")
	fs.StringVar(&f.prefix, "etcd-prefix", "/berth/", "prefix of every key berthd keeps in etcd")
	fs.StringVar(&f.ca, "etcd-cacert", "", "verify etcd's members with this CA (PEM); enables TLS to etcd")
	fs.StringVar(&f.cert, "etcd-cert", "", "client certificate for etcd (PEM)")
	fs.StringVar(&f.key, "etcd-key", "", "the etcd client certificate's key (PEM)")
	fs.DurationVar(&f.leaderTTL, "leader-ttl", 5*time.Second, "how long a dead leader keeps the leadership (etcd session TTL, whole seconds, at least 2s)")
}

func (f *etcdFlags) check() error {
	switch {
	case f.store != "etcd":
		return fmt.Errorf("--store %q: want bolt or etcd", f.store)
	case f.endpoints == "":
		return errors.New("--store etcd needs --etcd-endpoints (or BERTHD_ETCD_ENDPOINTS)")
	case f.leaderTTL < 2*time.Second:
		return fmt.Errorf("--leader-ttl %s: etcd's minimum is about 2s", f.leaderTTL)
	}
	return nil
}

// service is berthd's API over one store, however many replicas serve it.
type service interface {
	Handler() http.Handler
	Start(ctx context.Context) error
	Drain(ctx context.Context) error
	Close() error
}

// openServer opens the store the flags choose and the API over it: one
// server on bolt, or a replica on etcd that builds a server each time it
// is elected.
func openServer(cfg config, log *slog.Logger, url string, newServer func(store.Store) (*server.Server, error), m *metrics.Metrics) (service, error) {
	if cfg.etcd.store != "etcd" {
		st, err := store.OpenBolt(cfg.dataDir, 5*time.Second)
		if err != nil {
			return nil, err
		}
		m.SingleLeader()
		m.WatchLeases(server.BucketLeases, func() store.Store { return st })
		srv, err := newServer(st)
		if err != nil {
			_ = st.Close()
			return nil, err
		}
		return single{Server: srv, st: st}, nil
	}
	tlsConfig, err := store.EtcdTLS(cfg.etcd.ca, cfg.etcd.cert, cfg.etcd.key)
	if err != nil {
		return nil, err
	}
	st, err := store.OpenEtcd(store.EtcdConfig{Endpoints: strings.Split(cfg.etcd.endpoints, ","), Prefix: cfg.etcd.prefix, TLS: tlsConfig})
	if err != nil {
		return nil, err
	}
	proxyTransport, err := peerTransport(cfg)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	var rep *replica.Replica
	// Only the leader counts the leases, so that they are not counted once
	// per replica.
	m.WatchLeases(server.BucketLeases, func() store.Store {
		if rep.Role() != replica.RoleLeader {
			return nil
		}
		return st
	})
	rep, err = replica.New(replica.Config{
		Store:          st,
		URL:            url,
		TTL:            cfg.etcd.leaderTTL,
		Logger:         log,
		OnLeaderChange: m.LeaderChanged,
		Transport:      proxyTransport,
		Lead: func(ctx context.Context, fenced store.Store) (http.Handler, func(context.Context) error, error) {
			srv, err := newServer(fenced)
			if err != nil {
				return nil, nil, err
			}
			if err := srv.Start(ctx); err != nil {
				return nil, nil, err
			}
			return srv.Handler(), srv.Drain, nil
		},
	})
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	return replicated{Replica: rep, st: st}, nil
}

// peerTransport is how a standby reaches an HTTPS leader: verifying it
// with --peer-ca, and presenting this replica's own certificate when the
// replicas require client certificates (--client-ca). nil: the default.
func peerTransport(cfg config) (http.RoundTripper, error) {
	if cfg.peerCA == "" && cfg.clientCA == "" {
		return nil, nil
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.peerCA != "" {
		pool, err := certPool("--peer-ca", cfg.peerCA)
		if err != nil {
			return nil, err
		}
		tlsConfig.RootCAs = pool
	}
	if cfg.clientCA != "" {
		cert, err := tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		tlsConfig.Certificates = []tls.Certificate{cert}
	}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		TLSClientConfig:       tlsConfig,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}, nil
}

// single is one berthd on its bolt file.
type single struct {
	*server.Server
	st store.Store
}

func (s single) Close() error { return s.st.Close() }

// replicated is one replica of several on etcd.
type replicated struct {
	*replica.Replica
	st store.Store
}

// Start campaigns in the background: /healthz says standby until this
// replica is elected and ready.
func (r replicated) Start(ctx context.Context) error {
	go func() { _ = r.Run(ctx) }()
	return nil
}

func (r replicated) Close() error { return r.st.Close() }

// withMetrics serves /metrics to any valid token and the status page at
// /, and measures the rest.
func withMetrics(m *metrics.Metrics, tokens *server.Tokens, api http.Handler) http.Handler {
	mux := http.NewServeMux()
	page := status.New(api)
	m.OnPlacementFailure(page.RecordFailure)
	page.Register(mux)
	mux.Handle("GET /metrics", m.Handler(func(r *http.Request) bool {
		_, ok := tokens.Authenticate(metrics.BearerToken(r))
		return ok
	}))
	mux.Handle("/", m.Middleware(api))
	return mux
}
