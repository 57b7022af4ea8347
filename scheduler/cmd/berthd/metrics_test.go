package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/berthsh/terraform-provider-berth/internal/promtest"
	"github.com/berthsh/terraform-provider-berth/internal/testenv"
	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

// scrape reads b's /metrics with the Prometheus text parser.
func scrape(t *testing.T, b *berthd) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest("GET", b.url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	return promtest.Parse(t, resp.Body)
}

// /metrics needs a token, parses as Prometheus text, follows the naming
// conventions, carries no id or key labels, and counts what was done:
// placements by pool and result, a rejection by reason, a replay, the
// store's commits, the leases held, HTTP latency by route and code.
func TestMetrics(t *testing.T) {
	env := testenv.Require(t)
	cleanPool(t, env, "met1")
	b := start(t, http.DefaultClient, []string{"BERTHD_ADMIN_TOKEN=" + adminToken}, "--data-dir", t.TempDir(), "--engines", enginesFile(t, env))
	b.waitReady(t)
	if a := b.do("GET", "/metrics", "", "", nil); a.status != http.StatusUnauthorized {
		t.Errorf("/metrics without a token: %d %s, want 401", a.status, a.body)
	}
	decodeAs[backend.PoolStatus](t, b.settle(t, "PUT", api.PoolPath("met1"), "pool", testPool(env, "met1", 2, 61600)), http.StatusOK)
	for i := range 3 {
		decodeAs[api.Lease](t, b.do("POST", api.PathLeases, adminToken, fmt.Sprintf("lease-%d", i), api.LeaseRequest{Spec: webSpec(env, "met1", fmt.Sprintf("w%d", i))}), http.StatusOK)
	}
	if a := b.do("POST", api.PathLeases, adminToken, "lease-0", api.LeaseRequest{Spec: webSpec(env, "met1", "w0")}); !a.replay {
		t.Errorf("repeat of lease-0 was not a replay: %d %s", a.status, a.body)
	}
	huge := webSpec(env, "met1", "huge")
	huge.Resources.MilliCPU = 64000
	if a := b.do("POST", api.PathLeases, adminToken, "lease-huge", api.LeaseRequest{Spec: huge}); a.code() != api.CodeNoFit {
		t.Fatalf("a lease that fits nowhere: %d %s, want %s", a.status, a.body, api.CodeNoFit)
	}
	// A provider's batch: each take counts as the placement it is.
	huge.Name = "huge-2"
	decodeAs[api.LeaseBatchResponse](t, b.do("POST", api.PathLeaseBatch, adminToken, "lease-batch",
		api.LeaseBatchRequest{Take: []api.LeaseRequest{{Spec: webSpec(env, "met1", "w3")}, {Spec: huge}}}), http.StatusOK)

	families := scrape(t, b)
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"berth_schedule_attempts_total", map[string]string{"pool": "met1", "result": "placed"}, 4},
		{"berth_schedule_attempts_total", map[string]string{"pool": "met1", "result": api.CodeNoFit}, 2},
		{"berth_rejections_total", map[string]string{"reason": api.CodeNoFit}, 1},
		{"berth_idempotent_replays_total", map[string]string{"route": api.RouteLeaseTake}, 1},
		{"berth_schedule_duration_seconds", map[string]string{"operation": "lease"}, 5},
		{"berth_http_request_duration_seconds", map[string]string{"route": api.RouteLeaseBatch, "code": "200"}, 1},
		{"berth_http_request_duration_seconds", map[string]string{"route": api.RouteLeaseTake, "code": "200"}, 4},
		{"berth_http_request_duration_seconds", map[string]string{"route": api.RouteLeaseTake, "code": "409"}, 1},
		{"berth_leases", map[string]string{"state": "held"}, 4},
		{"berth_leader", nil, 1},
	}
	for _, c := range checks {
		if got := promtest.Sum(families, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got := promtest.Sum(families, "berth_store_commit_duration_seconds", map[string]string{"store": "bolt", "result": "ok"}); got < 4 {
		t.Errorf("store commits measured: %v, want at least the pool and 3 leases", got)
	}
	for name, f := range families {
		if !strings.HasPrefix(name, "berth_") {
			continue
		}
		if f.GetType() == dto.MetricType_COUNTER && !strings.HasSuffix(name, "_total") {
			t.Errorf("counter %s does not end in _total", name)
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "lease", "id", "key", "lease_id", "name", "container":
					t.Errorf("%s has a %s label", name, l.GetName())
				}
			}
		}
	}
}
