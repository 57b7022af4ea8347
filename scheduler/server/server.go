package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
	"github.com/berthsh/terraform-provider-berth/scheduler/store"
)

// bucketPools names the pools applied through berthd (value: the spec), so
// a start knows which ledgers to rebuild and GET /v1/pools what to list.
const bucketPools = "pools"

// Config wires a Server; zero durations pick the defaults.
type Config struct {
	Backend *backend.Embedded // berthd's one scheduling core, over its engines
	Store   store.Store
	Tokens  *Tokens
	Logger  *slog.Logger
	Clock   func() time.Time // default time.Now

	SweepInterval time.Duration // how often expired leases are checked; default 15s
	InFlightWait  time.Duration // how long a repeat waits for its first run; default 5s
	OpTimeout     time.Duration // bound on one detached operation; default 15m
	IdemRetention time.Duration // how long answers are kept for repeats; default 24h

	OnLeaseExpired func(pool string) // told each lease the sweep removes; optional
}

// Server is berthd's API.
type Server struct {
	be     *backend.Embedded
	store  store.Store
	tokens *Tokens
	log    *slog.Logger
	clock  func() time.Time

	leases     *leases
	idem       *idempotency
	requestIDs *requestIDs

	sweepInterval, idemRetention time.Duration

	ready atomic.Bool
}

// New returns a server that is not ready yet: Start rebuilds its ledger.
func New(cfg Config) (*Server, error) {
	if cfg.Backend == nil || cfg.Store == nil || cfg.Tokens == nil {
		return nil, errors.New("server: Backend, Store and Tokens are required")
	}
	s := &Server{
		be: cfg.Backend, store: cfg.Store, tokens: cfg.Tokens,
		log: cfg.Logger, clock: cfg.Clock, requestIDs: newRequestIDs(),
		sweepInterval: orDefault(cfg.SweepInterval, 15*time.Second),
		idemRetention: orDefault(cfg.IdemRetention, 24*time.Hour),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	s.leases = newLeases(s.be, s.store, s.clock, s.log)
	if cfg.OnLeaseExpired != nil {
		s.leases.onExpired = cfg.OnLeaseExpired
	}
	s.idem = &idempotency{
		store: s.store, clock: s.clock, running: map[string]*operation{},
		waitInFlight: orDefault(cfg.InFlightWait, 5*time.Second),
		opTimeout:    orDefault(cfg.OpTimeout, 15*time.Minute),
	}
	return s, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Start rebuilds the ledger (every pool applied through berthd, from its
// engines; then the held leases, from the store), marks the server ready
// and runs the lease sweep until ctx ends. A pool whose engines do not
// answer is logged and loaded on first use instead.
func (s *Server) Start(ctx context.Context) error {
	items, err := s.store.List(ctx, bucketPools, "")
	if err != nil {
		return fmt.Errorf("reading pools from the store: %w", err)
	}
	for _, item := range items {
		if err := s.be.LoadPool(ctx, item.Key); err != nil {
			s.log.Warn("pool ledger not rebuilt at start", "pool", item.Key, "err", err)
		}
	}
	if err := s.leases.restore(ctx); err != nil {
		return fmt.Errorf("restoring leases: %w", err)
	}
	s.ready.Store(true)
	s.log.Info("ready", "pools", len(items), "leases", len(s.leases.list(func(api.Lease) bool { return true })))
	go s.sweepLoop(ctx)
	return nil
}

func (s *Server) sweepLoop(ctx context.Context) {
	ticker := time.NewTicker(s.sweepInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		s.sweep(ctx)
	}
}

// sweep runs one round of expiry, bounded by the interval so that a slow
// engine never stacks rounds.
func (s *Server) sweep(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, s.sweepInterval)
	defer cancel()
	s.leases.sweep(ctx)
	if err := s.idem.expire(ctx, s.idemRetention); err != nil && ctx.Err() == nil {
		s.log.Warn("old idempotency records not removed", "err", err)
	}
}

// Drain refuses new mutating requests and waits, within ctx, for the
// running ones. What does not finish stays recorded as started: its
// repeat (same key) resumes it after a restart.
func (s *Server) Drain(ctx context.Context) error {
	return s.idem.close(ctx)
}

// Handler is the HTTP API with its middleware.
func (s *Server) Handler() http.Handler {
	return chain(s.routes(), s.withRequestID, s.withLogging, s.withRecover, withBodyLimit)
}

// poolNames lists the pools applied through berthd.
func (s *Server) poolNames(ctx context.Context) ([]string, error) {
	items, err := s.store.List(ctx, bucketPools, "")
	if err != nil {
		return nil, err
	}
	names := make([]string, len(items))
	for i, item := range items {
		names[i] = item.Key
	}
	return names, nil
}

func (s *Server) rememberPool(ctx context.Context, spec backend.PoolSpec) error {
	data, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return commit(ctx, s.store, store.Op{Bucket: bucketPools, Key: spec.Name, Value: data})
}

func (s *Server) forgetPool(ctx context.Context, name string) error {
	return commit(ctx, s.store, store.Op{Bucket: bucketPools, Key: name})
}
