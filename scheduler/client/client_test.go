package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

// fakeBerthd answers from a script of handlers, one per request, and
// records what it received.
type fakeBerthd struct {
	mu       sync.Mutex
	script   []http.HandlerFunc // consumed in order; the last one repeats
	requests []*http.Request
	bodies   []string
}

func (f *fakeBerthd) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body := new(strings.Builder)
	_, _ = fmt.Fprint(body, readAll(r))
	r.Body = io.NopCloser(strings.NewReader(body.String())) // handlers read it too
	f.mu.Lock()
	f.requests = append(f.requests, r)
	f.bodies = append(f.bodies, body.String())
	h := f.script[0]
	if len(f.script) > 1 {
		f.script = f.script[1:]
	}
	f.mu.Unlock()
	h(w, r)
}

func (f *fakeBerthd) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

func readAll(r *http.Request) string {
	b := new(strings.Builder)
	buf := make([]byte, 4096)
	for {
		n, err := r.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

func fail(status int, code, message string, retryAfter string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if retryAfter != "" {
			w.Header().Set(api.HeaderRetryAfter, retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(api.Error{Code: code, Message: message})
	}
}

func answer(v any) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
}

// hangUp closes the connection without an answer, as a crashed berthd or a
// dropped response does.
func hangUp(w http.ResponseWriter, _ *http.Request) {
	hijacker, ok := w.(http.Hijacker)
	if !ok {
		panic("the test server cannot hang up")
	}
	if conn, _, err := hijacker.Hijack(); err == nil {
		_ = conn.Close()
	}
}

func newTestClient(t *testing.T, urls ...string) *Client {
	t.Helper()
	c, err := New(Config{URLs: urls, Token: "s3cret", UserAgent: "test"})
	if err != nil {
		t.Fatal(err)
	}
	// Keep the retry policy, with waits small enough for a unit test.
	c.t.http.RetryWaitMin, c.t.http.RetryWaitMax = time.Millisecond, 5*time.Millisecond
	return c
}

func serve(t *testing.T, script ...http.HandlerFunc) (*fakeBerthd, string) {
	t.Helper()
	f := &fakeBerthd{script: script}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

var spec = backend.ContainerSpec{Pool: "dc1", Name: "web-0", Image: "app:1", Resources: backend.Resources{MilliCPU: 500, MemoryBytes: 64 << 20}}

func TestRetriesWhatIsSafeWithOneIdempotencyKey(t *testing.T) {
	lease := api.Lease{ID: "r-1", Pool: "dc1", Name: "web-0", Host: "node2"}
	f, url := serve(t,
		fail(http.StatusServiceUnavailable, api.CodeNotReady, "ledger loading", "0"),
		hangUp,
		fail(http.StatusBadGateway, "http_502", "bad gateway", ""),
		fail(http.StatusTooManyRequests, "http_429", "slow down", ""),
		fail(http.StatusGatewayTimeout, "http_504", "timeout", ""),
		fail(http.StatusConflict, api.CodeInFlight, "still running", "0"),
		answer(taken(lease)),
	)
	result, err := newTestClient(t, url).PlanContainer(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if result.Host != "node2" {
		t.Errorf("planned host %q, want node2", result.Host)
	}
	if f.count() != 7 {
		t.Fatalf("%d attempts, want 7", f.count())
	}
	key := f.requests[0].Header.Get(api.HeaderIdempotencyKey)
	for i, r := range f.requests {
		if got := r.Header.Get(api.HeaderIdempotencyKey); got != key || key == "" {
			t.Errorf("attempt %d: Idempotency-Key %q, want %q on every attempt", i, got, key)
		}
		if got := r.Header.Get("Authorization"); got != "Bearer s3cret" {
			t.Errorf("attempt %d: Authorization %q", i, got)
		}
		if f.bodies[i] != f.bodies[0] {
			t.Errorf("attempt %d sent another body: %s", i, f.bodies[i])
		}
	}
}

func TestNeverRetriesOtherClientErrors(t *testing.T) {
	for _, tc := range []struct {
		status      int
		code        string
		isDuplicate bool
	}{
		{http.StatusBadRequest, api.CodeBadRequest, false},
		{http.StatusUnauthorized, api.CodeUnauthorized, false},
		{http.StatusForbidden, api.CodeForbidden, false},
		{http.StatusConflict, api.CodeNoFit, false},
		{http.StatusConflict, api.CodeNameInUse, true},
		{http.StatusConflict, api.CodeLeaseExpired, false},
		{http.StatusUnprocessableEntity, api.CodeIdempotencyKeyReused, false},
		{http.StatusInternalServerError, api.CodeBackend, false},
	} {
		t.Run(tc.code, func(t *testing.T) {
			message := "berthd says " + tc.code
			f, url := serve(t, fail(tc.status, tc.code, message, "0"))
			_, err := newTestClient(t, url).CreateContainer(context.Background(), spec)
			if f.count() != 1 {
				t.Errorf("%d attempts, want 1", f.count())
			}
			if err == nil || !strings.Contains(err.Error(), message) {
				t.Errorf("error %v, want berthd's message %q", err, message)
			}
			if errors.Is(err, backend.ErrDuplicateName) != tc.isDuplicate {
				t.Errorf("errors.Is(err, ErrDuplicateName) = %v, want %v", !tc.isDuplicate, tc.isDuplicate)
			}
		})
	}
}

func TestFinalErrorIsBerthdsMessage(t *testing.T) {
	f, url := serve(t, fail(http.StatusServiceUnavailable, api.CodeShuttingDown, "berthd is shutting down", "0"))
	_, err := newTestClient(t, url).PoolUsage(context.Background(), "dc1")
	if f.count() != retryMax+1 {
		t.Errorf("%d attempts, want %d", f.count(), retryMax+1)
	}
	if err == nil || !strings.Contains(err.Error(), "berthd is shutting down") || strings.Contains(err.Error(), "giving up") {
		t.Errorf("error %q, want berthd's message and not retryablehttp's", err)
	}
}

func TestMovesToTheNextURLWhenOneDoesNotAnswer(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + dead.Addr().String()
	_ = dead.Close()
	f, live := serve(t, answer(backend.PoolUsage{Name: "dc1"}))
	c := newTestClient(t, deadURL, live+"/")
	for range 2 {
		if usage, err := c.PoolUsage(context.Background(), "dc1"); err != nil || usage.Name != "dc1" {
			t.Fatalf("usage %+v, %v", usage, err)
		}
	}
	if f.count() != 2 {
		t.Errorf("live replica got %d requests, want 2", f.count())
	}
	if c.t.urls[c.t.active.Load()] != live {
		t.Errorf("the client did not stay on the URL that answered: %v %d", c.t.urls, c.t.active.Load())
	}

	_, err = newTestClient(t, deadURL).PoolUsage(context.Background(), "dc1")
	if err == nil || !strings.Contains(err.Error(), "did not answer at "+deadURL) {
		t.Errorf("error %v, want one naming the URL", err)
	}
}

// The plan's lease is what the create names: the create goes to the
// lease's host with the spec as leased, and its retries share one key,
// which names the lease.
func TestCreateNamesThePlansLease(t *testing.T) {
	lease := api.Lease{ID: "r-42", Pool: "dc1", Name: "web-0", Host: "node3"}
	f, url := serve(t, answer(taken(lease)), hangUp, answer(backend.ContainerState{Ref: backend.ContainerRef{Pool: "dc1", Name: "web-0", Host: "node3", ContainerID: "c1"}}))
	c := newTestClient(t, url)
	ctx := context.Background()
	if _, err := c.PlanContainer(ctx, spec); err != nil {
		t.Fatal(err)
	}
	planned := spec
	planned.Host = "node3" // the plan's host, as the provider passes it to Create
	created, err := c.CreateContainer(ctx, planned)
	if err != nil {
		t.Fatal(err)
	}
	if created.Ref.ContainerID != "c1" {
		t.Errorf("created %+v", created)
	}
	if f.count() != 3 {
		t.Fatalf("%d requests, want lease + create + its retry", f.count())
	}
	first, retry := f.requests[1].Header.Get(api.HeaderIdempotencyKey), f.requests[2].Header.Get(api.HeaderIdempotencyKey)
	if !strings.HasPrefix(first, "create-r-42-") || retry != first {
		t.Errorf("create keys %q then %q, want one key starting create-r-42-", first, retry)
	}
	var sent api.CreateRequest
	if err := json.Unmarshal([]byte(f.bodies[2]), &sent); err != nil {
		t.Fatal(err)
	}
	if sent.LeaseID != "r-42" || sent.PlannedHost != "node3" || sent.Spec.Host != "" || api.Fingerprint(sent.Spec) != api.Fingerprint(spec) {
		t.Errorf("create request %+v, want lease r-42 on node3 with the spec as leased", sent)
	}
}

func TestCreateWithoutLeaseStaysOnPlannedHost(t *testing.T) {
	f, url := serve(t, answer(backend.ContainerState{}))
	planned := spec
	planned.Host = "node1"
	if _, err := newTestClient(t, url).CreateContainer(context.Background(), planned); err != nil {
		t.Fatal(err)
	}
	var sent api.CreateRequest
	if err := json.Unmarshal([]byte(f.bodies[0]), &sent); err != nil {
		t.Fatal(err)
	}
	if sent.LeaseID != "" || sent.PlannedHost != "node1" {
		t.Errorf("create request %+v, want no lease and planned host node1", sent)
	}
}

func TestConcurrentReadsShareRequests(t *testing.T) {
	release := make(chan struct{})
	var f *fakeBerthd
	respond := func(w http.ResponseWriter, r *http.Request) {
		<-release
		var req api.ReadRequest
		f.mu.Lock()
		body := f.bodies[len(f.bodies)-1]
		f.mu.Unlock()
		_ = json.Unmarshal([]byte(body), &req)
		out := api.ReadResponse{}
		for _, ref := range req.Refs {
			out.Containers = append(out.Containers, &backend.ContainerState{Ref: ref})
		}
		answer(out)(w, r)
	}
	f, url := serve(t, respond)
	c := newTestClient(t, url)
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			state, err := c.ReadContainer(context.Background(), backend.ContainerRef{Pool: "dc1", Name: fmt.Sprint("c", i)})
			if err == nil && (state == nil || state.Ref.Name != fmt.Sprint("c", i)) {
				err = fmt.Errorf("read c%d got %+v", i, state)
			}
			errs[i] = err
		}()
	}
	for f.count() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let the other reads queue behind the first batch
	close(release)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if f.count() >= n {
		t.Errorf("%d reads took %d requests; concurrent reads should share", n, f.count())
	}
}

func TestBackoffHonoursRetryAfterAndJitters(t *testing.T) {
	resp := &http.Response{Header: http.Header{api.HeaderRetryAfter: {"3"}}}
	if got := jitteredBackoff(time.Millisecond, 10*time.Second, 0, resp); got != 3*time.Second {
		t.Errorf("Retry-After 3: waited %s", got)
	}
	if got := jitteredBackoff(time.Millisecond, 2*time.Second, 0, resp); got != 2*time.Second {
		t.Errorf("Retry-After beyond the ceiling: waited %s, want the ceiling", got)
	}
	seen := map[time.Duration]bool{}
	for range 50 {
		d := jitteredBackoff(100*time.Millisecond, 5*time.Second, 3, nil)
		if d < 400*time.Millisecond || d > 800*time.Millisecond {
			t.Fatalf("attempt 3 waited %s, want within [400ms, 800ms]", d)
		}
		seen[d] = true
	}
	if len(seen) < 10 {
		t.Errorf("50 waits took only %d distinct values: no jitter", len(seen))
	}
}

// Once a create does not fit, the plan fails: the leases this process took,
// before and after, are given back instead of holding capacity until they
// expire.
func TestNoFitGivesBackThePlansLeases(t *testing.T) {
	route := func(w http.ResponseWriter, r *http.Request) {
		var req api.LeaseBatchRequest
		_ = json.Unmarshal([]byte(readAll(r)), &req)
		out := api.LeaseBatchResponse{Release: make([]api.LeaseResult, len(req.Release))}
		for _, take := range req.Take {
			if take.Spec.Name == "web-1" {
				out.Take = append(out.Take, api.LeaseResult{Status: http.StatusConflict, Error: &api.Error{Code: api.CodeNoFit, Message: "no host fits web-1"}})
				continue
			}
			out.Take = append(out.Take, taken(api.Lease{ID: "r-" + take.Spec.Name, Host: "node1"}).Take...)
		}
		answer(out)(w, r)
	}
	f, url := serve(t, route)
	c := newTestClient(t, url)
	ctx := context.Background()
	for _, name := range []string{"web-0", "web-1", "web-2"} {
		s := spec
		s.Name = name
		_, err := c.PlanContainer(ctx, s)
		if (err != nil) != (name == "web-1") {
			t.Fatalf("plan %s: %v", name, err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var released []string
	for _, body := range f.bodies {
		var req api.LeaseBatchRequest
		_ = json.Unmarshal([]byte(body), &req)
		released = append(released, req.Release...)
	}
	slices.Sort(released)
	if !slices.Equal(released, []string{"r-web-0", "r-web-2"}) {
		t.Errorf("released %v, want the leases of web-0 and web-2", released)
	}
}

// taken is berthd's answer to a lease batch of one take.
func taken(lease api.Lease) api.LeaseBatchResponse {
	return api.LeaseBatchResponse{Take: []api.LeaseResult{{Lease: &lease}}}
}
