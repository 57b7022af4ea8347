package replica

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/store"
)

// Role names what a replica is, as /healthz says it.
const (
	RoleLeader  = "leader"
	RoleStandby = "standby"
)

// headerProxied marks a request a standby forwarded: a replica that gets
// one and is not the leader answers 503 instead of forwarding it again.
const headerProxied = "X-Berth-Proxied-By"

// electionBucket is the election's prefix under the store's.
const electionBucket = "election"

// Lead builds and starts the leader's server over st (a store view fenced
// by the leadership) and returns its handler once it is ready to serve,
// and a drain to call before a clean stop. ctx ends when the leadership
// does.
type Lead func(ctx context.Context, st store.Store) (handler http.Handler, drain func(context.Context) error, err error)

// Config wires a Replica; zero values pick the defaults.
type Config struct {
	Store  *store.Etcd
	URL    string // where the other replicas reach this one
	Lead   Lead
	Logger *slog.Logger
	// TTL of the session's lease: how long a dead leader keeps the
	// leadership. etcd's minimum is about 2s, and TTLs stretch while
	// etcd itself changes leader. Default 5s.
	TTL time.Duration
	// OnLeaderChange is told each time this replica gains or loses the
	// leadership (for metrics).
	OnLeaderChange func(leader bool)
	// Transport carries a standby's proxied requests to the leader (for
	// an HTTPS leader: the CA that verifies it, a client certificate).
	// Default http.DefaultTransport.
	Transport http.RoundTripper
}

// Replica is one berthd of several.
type Replica struct {
	cfg    Config
	log    *slog.Logger
	prefix string

	leader atomic.Pointer[url.URL] // the current leader, as observed; nil when none
	active atomic.Pointer[serving] // set while this replica leads and is ready
	leads  atomic.Bool             // elected, ready or not

	mu    sync.Mutex // guards drain
	drain func(context.Context) error

	proxy *httputil.ReverseProxy
}

type serving struct{ handler http.Handler }

// New returns a standby; Run campaigns.
func New(cfg Config) (*Replica, error) {
	if cfg.Store == nil || cfg.URL == "" || cfg.Lead == nil {
		return nil, errors.New("replica: Store, URL and Lead are required")
	}
	if _, err := url.Parse(cfg.URL); err != nil {
		return nil, fmt.Errorf("replica: URL %q: %w", cfg.URL, err)
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.OnLeaderChange == nil {
		cfg.OnLeaderChange = func(bool) {}
	}
	r := &Replica{cfg: cfg, log: cfg.Logger, prefix: cfg.Store.Prefix() + electionBucket + "/"}
	r.proxy = &httputil.ReverseProxy{
		Transport: cfg.Transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			target, _ := pr.In.Context().Value(targetKey{}).(*url.URL)
			pr.SetURL(target)
			pr.SetXForwarded()
			pr.Out.Host = target.Host
			pr.Out.Header.Set(headerProxied, cfg.URL)
		},
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
			unavailable(w, fmt.Sprintf("this berthd is a standby and the leader it knows did not answer (%v); retry in a few seconds", err))
		},
	}
	return r, nil
}

type targetKey struct{}

// Run campaigns for the leadership until ctx ends, leading whenever it
// wins and standing by otherwise. It returns ctx's error, after resigning
// if it led (so that a standby takes over at once).
func (r *Replica) Run(ctx context.Context) error {
	for {
		err := r.term(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.log.Warn("leadership term ended; campaigning again", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// term is one session: observe the leader, campaign, lead until the
// session ends.
func (r *Replica) term(ctx context.Context) error {
	session, err := concurrency.NewSession(r.cfg.Store.Client(), concurrency.WithTTL(int(r.cfg.TTL.Seconds())), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("etcd session: %w", err)
	}
	defer session.Close()
	election := concurrency.NewElection(session, r.prefix)

	observeCtx, stopObserving := context.WithCancel(ctx)
	defer stopObserving()
	go r.observe(observeCtx, election)

	if err := election.Campaign(ctx, r.cfg.URL); err != nil {
		return fmt.Errorf("campaign: %w", err)
	}
	leadCtx, endLead := context.WithCancel(ctx)
	defer endLead()
	r.leads.Store(true)
	r.cfg.OnLeaderChange(true)
	r.log.Info("elected leader; rebuilding the ledger from etcd and the engines", "key", election.Key(), "revision", election.Rev())
	defer func() {
		r.active.Store(nil)
		r.leads.Store(false)
		r.cfg.OnLeaderChange(false)
	}()

	handler, drain, err := r.cfg.Lead(leadCtx, r.cfg.Store.Fenced(election.Key(), election.Rev()))
	if err != nil {
		resign(election)
		return fmt.Errorf("starting as leader: %w", err)
	}
	r.mu.Lock()
	r.drain = drain
	r.mu.Unlock()
	r.active.Store(&serving{handler: handler})
	r.log.Info("leading", "url", r.cfg.URL)

	select {
	case <-session.Done():
		// The lease is gone (etcd did not hear from us within the TTL):
		// another replica may lead already. Stop serving at once; the
		// fenced store refuses whatever is still running.
		r.active.Store(nil)
		r.log.Warn("leadership lost: the etcd session ended")
		return errors.New("session ended")
	case <-ctx.Done():
		r.active.Store(nil)
		resign(election)
		return ctx.Err()
	}
}

// resign hands the leadership over without waiting for the TTL.
func resign(election *concurrency.Election) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = election.Resign(ctx)
}

// observe follows who leads, for the proxy.
func (r *Replica) observe(ctx context.Context, election *concurrency.Election) {
	for resp := range election.Observe(ctx) {
		if len(resp.Kvs) == 0 {
			continue
		}
		leader, err := url.Parse(string(resp.Kvs[0].Value))
		if err != nil {
			r.log.Warn("the leader's URL does not parse", "url", string(resp.Kvs[0].Value), "err", err)
			continue
		}
		if old := r.leader.Swap(leader); old == nil || old.String() != leader.String() {
			r.log.Info("leader", "url", leader.String())
		}
	}
}

// Role says whether this replica leads now.
func (r *Replica) Role() string {
	if r.leads.Load() {
		return RoleLeader
	}
	return RoleStandby
}

// Drain drains the leader's server, when this replica leads.
func (r *Replica) Drain(ctx context.Context) error {
	r.mu.Lock()
	drain := r.drain
	r.mu.Unlock()
	if drain == nil || r.active.Load() == nil {
		return nil
	}
	return drain(ctx)
}

// Health is what /healthz answers on a replica.
type Health struct {
	Status string `json:"status"`
	Role   string `json:"role"`
	Leader string `json:"leader,omitempty"`
}

// Handler serves /healthz itself and everything else through the leader:
// its own server when it leads, a proxy to the leader otherwise.
func (r *Replica) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(api.RouteHealthz, r.healthz)
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		if active := r.active.Load(); active != nil {
			active.handler.ServeHTTP(w, req)
			return
		}
		if r.Role() == RoleLeader {
			unavailable(w, "this berthd was just elected leader and is rebuilding its ledger; retry in a few seconds")
			return
		}
		if by := req.Header.Get(headerProxied); by != "" {
			unavailable(w, fmt.Sprintf("forwarded by %s, but this berthd is not the leader (the leadership is changing); retry in a few seconds", by))
			return
		}
		leader := r.leader.Load()
		if leader == nil || leader.String() == r.cfg.URL {
			unavailable(w, "no berthd replica leads yet (election in progress, or etcd unreachable); retry in a few seconds")
			return
		}
		r.proxy.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), targetKey{}, leader)))
	})
	return mux
}

func (r *Replica) healthz(w http.ResponseWriter, _ *http.Request) {
	h := Health{Status: "ok", Role: r.Role()}
	if leader := r.leader.Load(); leader != nil {
		h.Leader = leader.String()
	}
	status := http.StatusOK
	if h.Role == RoleLeader && r.active.Load() == nil {
		h.Status, status = "rebuilding", http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(h)
}

// unavailable answers 503 not_ready: the client retries, as it does
// while berthd starts.
func unavailable(w http.ResponseWriter, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(api.HeaderRetryAfter, "1")
	w.WriteHeader(http.StatusServiceUnavailable)
	_ = json.NewEncoder(w).Encode(api.Error{Code: api.CodeNotReady, Message: message})
}
