package status

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

// fakeAPI answers the three reads the fragment makes, to the token
// "good" only, as berthd would.
func fakeAPI(now time.Time) http.Handler {
	answers := map[string]any{
		api.PathUsage: api.UsageList{Pools: []backend.PoolUsage{{Name: "dc1", Strategy: "spread", Hosts: []backend.HostUsage{
			{Name: "node1", Healthy: true, Containers: 3, MaxContainers: 10,
				Capacity: backend.Resources{MilliCPU: 4000, MemoryBytes: 2 << 30}, Reserved: backend.Resources{MilliCPU: 1500, MemoryBytes: 512 << 20},
				Free:      backend.Resources{MilliCPU: 2500, MemoryBytes: 1536 << 20},
				DiskBytes: 10 << 30, DiskReserved: 3 << 30, DiskFree: 7 << 30,
				GPUs: 2, GPUsReserved: 1, GPUsFree: 1, GPUIDs: []string{"GPU-a", "GPU-b"}, GPUIDsHeld: []string{"GPU-b"}},
			{Name: "node2", Healthy: false, Capacity: backend.Resources{MilliCPU: 2000, MemoryBytes: 1 << 30}},
			{Name: "node3", Healthy: true, Capacity: backend.Resources{MilliCPU: 2000, MemoryBytes: 1 << 30}},
		}}}},
		api.PathPools: api.PoolList{Pools: []backend.PoolStatus{{Spec: backend.PoolSpec{Name: "dc1", Hosts: map[string]backend.PoolHostSpec{
			"node1": {}, "node2": {}, "node3": {Cordoned: true},
		}}}}},
		api.PathLeases: api.LeaseList{Leases: []api.Lease{{ID: "l1", Pool: "dc1", Name: "web-9", Host: "node1", Holder: "ci-team-a",
			Created: now.Add(-90 * time.Second), Expires: now.Add(10 * time.Minute)}}},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer good" {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(api.Error{Code: api.CodeUnauthorized, Message: "needs a token"})
			return
		}
		_ = json.NewEncoder(w).Encode(answers[r.URL.Path])
	})
}

func fetch(t *testing.T, mux http.Handler, path, token string) (int, string) {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Body)
	return rec.Code, string(body)
}

// The page at / is served to anyone (it asks for the token); its fragment
// shows what the API answers with the caller's token: each host's bars
// with the numbers (disk and GPUs only where declared, "not accounted"
// elsewhere), the cordoned and unhealthy hosts with their cause, the
// lease by token name with its age, and the newest 20 failures, newest
// first. Without a valid token the fragment is the API's 401.
func TestFragment(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	page := New(fakeAPI(now))
	page.clock = func() time.Time { return now }
	mux := http.NewServeMux()
	page.Register(mux)
	for i := range keepFailures + 5 {
		page.RecordFailure("dc1", api.CodeNoFit, fmt.Sprintf("no host fits web-%d", i))
	}

	if status, body := fetch(t, mux, "/", ""); status != http.StatusOK || !strings.Contains(body, `\/status\/fragment`) { // escaped in a JS string
		t.Errorf("/: %d, want the page that fetches %s:\n%s", status, FragmentPath, body)
	}
	if status, body := fetch(t, mux, FragmentPath, "bad"); status != http.StatusUnauthorized || !strings.Contains(body, api.CodeUnauthorized) {
		t.Errorf("fragment with a bad token: %d %s, want the API's 401", status, body)
	}
	status, body := fetch(t, mux, FragmentPath, "good")
	if status != http.StatusOK {
		t.Fatalf("fragment: %d %s", status, body)
	}
	for _, want := range []string{
		"dc1", "node1", "1.50 / 4.00 CPU", "2.50 CPU free", "512MiB / 2GiB", "1.5GiB free", "3 / 10", "7 free",
		"3GiB / 10GiB", "7GiB free", "1 / 2 GPU", "1 GPU free", "held: GPU-b",
		`data-disk-used="3221225472" data-disk-capacity="10737418240" data-disk-free="7516192768"`,
		`data-gpus-used="1" data-gpus-capacity="2" data-gpus-free="1" data-gpus-held="GPU-b"`,
		"node2", "unhealthy", "its engine does not answer",
		"node3", "cordoned in the pool", "0 (no limit)",
		"ci-team-a", "web-9", "1m30s",
		"no host fits web-24", "no host fits web-5",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the fragment does not show %q", want)
		}
	}
	// node2 and node3 declare no disk and no GPUs.
	if n := strings.Count(body, "not accounted (no disk declared)"); n != 2 {
		t.Errorf("%d hosts show disk as not accounted, want 2", n)
	}
	if n := strings.Count(body, "not accounted (no gpus declared)"); n != 2 {
		t.Errorf("%d hosts show GPUs as not accounted, want 2", n)
	}
	if n := strings.Count(body, "data-disk-used="); n != 1 {
		t.Errorf("%d hosts carry disk numbers, want 1", n)
	}
	if n := strings.Count(body, "no host fits web-"); n != keepFailures {
		t.Errorf("the fragment shows %d failures, want the newest %d", n, keepFailures)
	}
	if newest, oldest := strings.Index(body, "web-24"), strings.Index(body, "web-5"); newest > oldest {
		t.Errorf("failures are not newest first")
	}
}
