package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/berthsh/terraform-provider-berth/internal/promtest"
	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/store"
)

// fakeAPI answers lease takes as berthd would: placed, a replay of an
// earlier answer, no_fit for the spec named "full", pool_not_found for
// the pool "nobody".
func fakeAPI() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(api.RouteLeaseTake, func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Spec struct{ Pool, Name string } }
		_ = json.NewDecoder(r.Body).Decode(&req)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case req.Spec.Pool == "nobody":
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(api.Error{Code: api.CodePoolNotFound, Message: "no pool nobody"})
		case req.Spec.Name == "full":
			w.WriteHeader(http.StatusConflict)
			_ = json.NewEncoder(w).Encode(api.Error{Code: api.CodeNoFit, Message: "no host fits full"})
		default:
			if r.Header.Get(api.HeaderIdempotencyKey) == "key-again" {
				w.Header().Set(api.HeaderReplay, "true")
			}
			_ = json.NewEncoder(w).Encode(api.Lease{ID: "lease-" + req.Spec.Name, Pool: req.Spec.Pool})
		}
	})
	return mux
}

// Every metric family, scraped through the handler and parsed with the
// Prometheus text parser, counts what was done; a scrape needs allow's
// yes; no label carries a lease id, an idempotency key or a container name.
func TestMetricsScrape(t *testing.T) {
	m := New()
	var failures []string
	m.OnPlacementFailure(func(pool, code, message string) { failures = append(failures, pool+" "+code+" "+message) })
	h := m.Middleware(fakeAPI())
	take := func(pool, name, key string) {
		body := strings.NewReader(`{"Spec":{"Pool":"` + pool + `","Name":"` + name + `"}}`)
		req := httptest.NewRequest("POST", api.PathLeases, body)
		req.Header.Set(api.HeaderIdempotencyKey, key)
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	take("p1", "web-0", "key-first")
	take("p1", "web-0", "key-again")
	take("p1", "full", "key-full")
	take("nobody", "web-1", "key-nobody")

	bolt, err := store.OpenBolt(t.TempDir(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer bolt.Close()
	st := m.Store(bolt, "bolt")
	ctx := context.Background()
	for _, l := range []api.Lease{{ID: "lease-held", Expires: time.Now().Add(time.Hour)}, {ID: "lease-old", Expires: time.Now().Add(-time.Minute)}} {
		if _, err := st.Commit(ctx, store.Op{Bucket: "leases", Key: l.ID, Value: mustJSON(t, l), Expect: store.Absent}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Commit(ctx, store.Op{Bucket: "leases", Key: "lease-held", Value: []byte("{}"), Expect: store.Absent}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a commit whose guard fails: %v, want a conflict", err)
	}
	m.WatchLeases("leases", func() store.Store { return bolt })
	m.LeaderChanged(true)
	m.LeaseExpired("p1")

	handler := m.Handler(func(r *http.Request) bool { return BearerToken(r) == "good" })
	refused := httptest.NewRecorder()
	handler.ServeHTTP(refused, httptest.NewRequest("GET", "/metrics", nil))
	if refused.Code != http.StatusUnauthorized {
		t.Errorf("/metrics without a token: %d, want 401", refused.Code)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Authorization", "Bearer good")
	handler.ServeHTTP(rec, req)
	text, _ := io.ReadAll(rec.Body)
	families := promtest.Parse(t, strings.NewReader(string(text)))

	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"berth_schedule_attempts_total", map[string]string{"pool": "p1", "result": "placed"}, 1},
		{"berth_schedule_attempts_total", map[string]string{"pool": "p1", "result": api.CodeNoFit}, 1},
		{"berth_schedule_attempts_total", map[string]string{"pool": "", "result": api.CodePoolNotFound}, 1},
		{"berth_idempotent_replays_total", map[string]string{"route": api.RouteLeaseTake}, 1},
		{"berth_rejections_total", map[string]string{"reason": api.CodeNoFit}, 1},
		{"berth_http_request_duration_seconds", map[string]string{"route": api.RouteLeaseTake, "code": "200"}, 2},
		{"berth_http_request_duration_seconds", map[string]string{"route": api.RouteLeaseTake, "code": "409"}, 1},
		{"berth_store_commit_duration_seconds", map[string]string{"store": "bolt", "result": "ok"}, 2},
		{"berth_store_commit_duration_seconds", map[string]string{"store": "bolt", "result": "conflict"}, 1},
		{"berth_store_conflicts_total", map[string]string{"store": "bolt"}, 1},
		{"berth_store_commit_ops", map[string]string{"store": "bolt"}, 3},
		{"berth_leases", map[string]string{"state": "held"}, 1},
		{"berth_leases", map[string]string{"state": "expired"}, 1},
		{"berth_lease_expirations_total", map[string]string{"pool": "p1"}, 1},
		{"berth_leader", nil, 1},
		{"berth_leader_changes_total", nil, 1},
	} {
		if got := promtest.Sum(families, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// Three commits, each its own transaction or grouped: the histogram's
	// sum is the number of commits written.
	if batches := families["berth_store_batch_commits"].GetMetric(); len(batches) != 1 || batches[0].GetHistogram().GetSampleSum() != 3 {
		t.Errorf("berth_store_batch_commits: %v, want commits summing to 3", batches)
	}
	if len(failures) != 1 || failures[0] != "p1 no_fit no host fits full" {
		t.Errorf("placement failures told: %q, want the no_fit alone", failures)
	}

	for name, family := range families {
		if family.GetType() == dto.MetricType_COUNTER && !strings.HasSuffix(name, "_total") {
			t.Errorf("counter %s does not end in _total", name)
		}
		for _, metric := range family.GetMetric() {
			for _, l := range metric.GetLabel() {
				if v := l.GetValue(); strings.HasPrefix(v, "lease-") || strings.HasPrefix(v, "key-") || strings.HasPrefix(v, "web-") {
					t.Errorf("%s has label %s=%q: an id, key or name must never be a label", name, l.GetName(), v)
				}
			}
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
