package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/store"
)

// Metrics holds berthd's collectors on a registry of its own.
type Metrics struct {
	registry *prometheus.Registry
	routes   *http.ServeMux // the API's patterns, to name a request's route

	httpDuration     *prometheus.HistogramVec
	scheduleAttempts *prometheus.CounterVec
	scheduleDuration *prometheus.HistogramVec
	rejections       *prometheus.CounterVec
	replays          *prometheus.CounterVec
	commitDuration   *prometheus.HistogramVec
	commitOps        *prometheus.HistogramVec
	batchCommits     *prometheus.HistogramVec
	conflicts        *prometheus.CounterVec
	leaderChanges    prometheus.Counter
	leader           prometheus.Gauge
	leaseExpirations *prometheus.CounterVec

	onFailure func(pool, code, message string)
}

// New registers berthd's metrics, and the Go runtime's and the process's.
func New() *Metrics {
	m := &Metrics{registry: prometheus.NewRegistry(), routes: http.NewServeMux(), onFailure: func(string, string, string) {}}
	for _, pattern := range api.Routes {
		m.routes.Handle(pattern, http.NotFoundHandler())
	}
	f := factory{m.registry}
	m.httpDuration = f.histogram("berth_http_request_duration_seconds", "Time to answer an HTTP request, by route pattern, method and status code.", prometheus.DefBuckets, "route", "code")
	m.scheduleAttempts = f.counter("berth_schedule_attempts_total", "Placements asked for (a lease taken, or a container created), by pool and result: placed, or the error code.", "pool", "result")
	m.scheduleDuration = f.histogram("berth_schedule_duration_seconds", "Time to answer a placement (lease or create, engines included for a create), by operation.", prometheus.DefBuckets, "operation")
	m.rejections = f.counter("berth_rejections_total", "Requests refused, by reason (the API error code).", "reason")
	m.replays = f.counter("berth_idempotent_replays_total", "Mutating requests answered from their idempotency record instead of running again, by route.", "route")
	m.commitDuration = f.histogram("berth_store_commit_duration_seconds", "Time for one store commit to be durable (bolt: fsync; etcd: quorum), by store and result.",
		[]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}, "store", "result")
	m.commitOps = f.histogram("berth_store_commit_ops", "Writes in one store commit (its batch size).", []float64{1, 2, 4, 8, 16, 32, 64}, "store")
	m.batchCommits = f.histogram("berth_store_batch_commits", "Commits written together in one store transaction (bolt: one fsync; etcd: one quorum round trip), by store.", []float64{1, 2, 4, 8, 16, 32, 64, 128}, "store")
	m.conflicts = f.counter("berth_store_conflicts_total", "Commits refused because a key moved since it was read (compare-and-swap lost; the caller retries or re-plans), by store.", "store")
	m.leaseExpirations = f.counter("berth_lease_expirations_total", "Leases removed because they expired unused, by pool.", "pool")
	m.leaderChanges = prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_leader_changes_total", Help: "Times this replica gained or lost the leadership."})
	m.leader = prometheus.NewGauge(prometheus.GaugeOpts{Name: "berth_leader", Help: "1 while this replica leads (always 1 for a single berthd on bolt)."})
	m.registry.MustRegister(m.leaderChanges, m.leader,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

type factory struct{ r *prometheus.Registry }

func (f factory) counter(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.r.MustRegister(c)
	return c
}

func (f factory) histogram(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	f.r.MustRegister(h)
	return h
}

// Handler serves the registry in the Prometheus text format to requests
// that allow says may read.
func (m *Metrics) Handler(allow func(*http.Request) bool) http.Handler {
	serve := promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allow(r) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(api.Error{Code: api.CodeUnauthorized, Message: "/metrics needs a token (any role): Authorization: Bearer <token>"})
			return
		}
		serve.ServeHTTP(w, r)
	})
}

// LeaderChanged records a gain (true) or loss of the leadership.
func (m *Metrics) LeaderChanged(leader bool) {
	m.leaderChanges.Inc()
	if leader {
		m.leader.Set(1)
	} else {
		m.leader.Set(0)
	}
}

// OnPlacementFailure is told each placement refused for a reason other
// than the request itself (for the status page).
func (m *Metrics) OnPlacementFailure(hook func(pool, code, message string)) { m.onFailure = hook }

// SingleLeader marks a berthd that is the only one: it always leads.
func (m *Metrics) SingleLeader() { m.leader.Set(1) }

// LeaseExpired counts a lease of pool removed on expiry.
func (m *Metrics) LeaseExpired(pool string) { m.leaseExpirations.WithLabelValues(pool).Inc() }

// placements are the routes that place: their pools are read from the body.
var placements = map[string]string{api.RouteLeaseTake: "lease", api.RouteLeaseBatch: "lease", api.RouteContainerCreate: "create"}

// Middleware measures every request that next answers.
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, route := m.routes.Handler(r)
		if route == "" {
			route = "other"
		}
		operation, places := placements[route]
		batch := route == api.RouteLeaseBatch
		var pools []string
		if places {
			pools = peekPools(r, batch)
		}
		start := time.Now()
		rec := &recorder{ResponseWriter: w, keep: batch}
		next.ServeHTTP(rec, r)
		took := time.Since(start).Seconds()
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		m.httpDuration.WithLabelValues(route, strconv.Itoa(rec.status)).Observe(took)
		replay := rec.Header().Get(api.HeaderReplay) == "true"
		if replay {
			m.replays.WithLabelValues(route).Inc()
		}
		if rec.status >= 400 {
			m.rejections.WithLabelValues(rec.code).Inc()
		}
		if places && !replay {
			for i, failure := range rec.outcomes(len(pools), batch) {
				m.countPlacement(pools[i], failure)
			}
			m.scheduleDuration.WithLabelValues(operation).Observe(took)
		}
	})
}

// countPlacement counts one placement of pool: placed when failure is nil.
func (m *Metrics) countPlacement(pool string, failure *api.Error) {
	result := "placed"
	if failure != nil {
		result = failure.Code
	}
	if result == api.CodePoolNotFound || result == api.CodeBadRequest || result == api.CodeForbidden || result == api.CodeUnauthorized {
		pool = "" // a name nobody configured must not become a series
	} else if failure != nil {
		m.onFailure(pool, failure.Code, failure.Message)
	}
	m.scheduleAttempts.WithLabelValues(pool, result).Inc()
}

// peekPools reads the pool of each placement a request names, and puts
// the body back.
func peekPools(r *http.Request, batch bool) []string {
	data, err := io.ReadAll(io.LimitReader(r.Body, api.MaxBodyBytes+1))
	_ = r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(data))
	type placement struct{ Spec struct{ Pool string } }
	if !batch {
		var body placement
		if err != nil || json.Unmarshal(data, &body) != nil {
			return []string{""}
		}
		return []string{body.Spec.Pool}
	}
	var body struct{ Take []placement }
	if err != nil || json.Unmarshal(data, &body) != nil {
		return nil
	}
	pools := make([]string, len(body.Take))
	for i, take := range body.Take {
		pools[i] = take.Spec.Pool
	}
	return pools
}

// recorder keeps the status, and the error code of an error answer.
type recorder struct {
	http.ResponseWriter
	status  int
	code    string
	message string
	keep    bool         // keep a successful answer too (a batch's results)
	body    bytes.Buffer // an error answer, for its code and message
}

// outcomes is the failure of each of n placements (nil: placed): the
// answer's for one, each result's for a batch.
func (w *recorder) outcomes(n int, batch bool) []*api.Error {
	out := make([]*api.Error, n)
	if w.status >= 400 {
		for i := range out {
			out[i] = &api.Error{Code: w.code, Message: w.message}
		}
		return out
	}
	if !batch {
		return out
	}
	var answer api.LeaseBatchResponse
	if json.Unmarshal(w.body.Bytes(), &answer) != nil || len(answer.Take) != n {
		return out
	}
	for i, result := range answer.Take {
		out[i] = result.Error
	}
	return out
}

func (w *recorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.keep && w.status < 400 {
		w.body.Write(b)
	} else if w.status >= 400 && w.body.Len() < 64<<10 {
		w.body.Write(b)
		var e api.Error
		if json.Unmarshal(w.body.Bytes(), &e) == nil {
			w.code, w.message = e.Code, e.Message
		}
	}
	return w.ResponseWriter.Write(b)
}

// Flush keeps streaming answers (the proxy's) streaming.
func (w *recorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Store measures st's commits under the name kind (bolt, etcd), and its
// transactions when it groups commits.
func (m *Metrics) Store(st store.Store, kind string) store.Store {
	if batched, ok := st.(interface{ ObserveBatches(func(int)) }); ok {
		batches := m.batchCommits.WithLabelValues(kind)
		batched.ObserveBatches(func(n int) { batches.Observe(float64(n)) })
	}
	return &measuredStore{Store: st, m: m, kind: kind}
}

type measuredStore struct {
	store.Store
	m    *Metrics
	kind string
}

func (s *measuredStore) Commit(ctx context.Context, ops ...store.Op) (int64, error) {
	start := time.Now()
	rev, err := s.Store.Commit(ctx, ops...)
	result := "ok"
	switch {
	case errors.Is(err, store.ErrConflict):
		result = "conflict"
		s.m.conflicts.WithLabelValues(s.kind).Inc()
	case errors.Is(err, store.ErrFenced):
		result = "fenced"
	case errors.Is(err, store.ErrUnavailable):
		result = "unavailable"
	case err != nil:
		result = "error"
	}
	s.m.commitDuration.WithLabelValues(s.kind, result).Observe(time.Since(start).Seconds())
	s.m.commitOps.WithLabelValues(s.kind).Observe(float64(len(ops)))
	return rev, err
}

// leaseCollector counts the leases held in the store, on each scrape.
type leaseCollector struct {
	bucket string
	st     func() store.Store
	clock  func() time.Time
	desc   *prometheus.Desc
}

// WatchLeases adds berth_leases{state}: the held leases in the store that
// st returns (nil: none, as on a standby), live or past their expiry but
// not swept yet. bucket is where the server keeps them.
func (m *Metrics) WatchLeases(bucket string, st func() store.Store) {
	m.registry.MustRegister(&leaseCollector{bucket: bucket, st: st, clock: time.Now,
		desc: prometheus.NewDesc("berth_leases", "Leases held (taken at plan, not yet bound to a container), by state: held, or expired awaiting the sweep.", []string{"state"}, nil)})
}

func (c *leaseCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *leaseCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]float64{"held": 0, "expired": 0}
	if st := c.st(); st != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		items, err := st.List(ctx, c.bucket, "")
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.desc, err)
			return
		}
		now := c.clock()
		for _, item := range items {
			var l api.Lease
			if json.Unmarshal(item.Value, &l) == nil && !l.Expires.IsZero() && !now.Before(l.Expires) {
				counts["expired"]++
			} else {
				counts["held"]++
			}
		}
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, n, state)
	}
}

// BearerToken is the token of an Authorization: Bearer header.
func BearerToken(r *http.Request) string {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return ""
	}
	return strings.TrimSpace(token)
}
