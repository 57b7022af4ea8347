//go:build bench

package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/etcdtest"
	"github.com/berthsh/terraform-provider-berth/internal/gcpace"
	"github.com/berthsh/terraform-provider-berth/internal/testenv"
	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
	"github.com/berthsh/terraform-provider-berth/scheduler/client"
	"github.com/berthsh/terraform-provider-berth/scheduler/store"
)

const (
	benchClients = 64
	// benchParallelism is Terraform's default -parallelism: the operations
	// one provider process runs at once.
	benchParallelism = 10
	benchDuration    = 5 * time.Second
	// benchPortBase is the start of the bench pools' host ports (34350-34499).
	benchPortBase = 34350
)

// placementFigures is one measured configuration.
type placementFigures struct {
	perSecond float64
	p50, p99  time.Duration
}

// meetsTarget is issue 8's target: 10,000 placements/s, p99 under 25 ms.
func (f placementFigures) meetsTarget() bool {
	return f.perSecond >= 10_000 && f.p99 < 25*time.Millisecond
}

// measure runs place from workers goroutines for benchDuration and times
// each placement.
func measure(t *testing.T, workers int, place func(worker, i int) error) placementFigures {
	t.Helper()
	var mu sync.Mutex
	var latencies []time.Duration
	var failures atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(benchDuration)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for i := 0; time.Now().Before(deadline); i++ {
				began := time.Now()
				if err := place(w, i); err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				mine = append(mine, time.Since(began))
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d placements failed, first: %v", n, firstErr.Load())
	}
	slices.Sort(latencies)
	return placementFigures{
		perSecond: float64(len(latencies)) / elapsed.Seconds(),
		p50:       latencies[len(latencies)/2],
		p99:       latencies[len(latencies)*99/100],
	}
}

// clientPlacements measures placements through the provider's own client
// (scheduler/client): processes provider processes (clients), each running
// parallelism operations at once as Terraform does. Each operation
// plans a container (takes its lease), re-plans it as the apply does (the
// same lease, renewed) and gives the lease back; a process's concurrent
// lease work coalesces into batched requests, as it does in a real plan.
// Every request carries its Idempotency-Key and commits with its durable
// record. (An apply binds the lease by creating a Docker container; the
// release stands in for it, so that the figure is berthd's own cost.)
func clientPlacements(t *testing.T, env *testenv.Env, st store.Store, pool string, processes, parallelism int) placementFigures {
	ts := startServer(t, env, st, Config{}, pool)
	ts.applyTestPool(t, pool, 1_000_000, benchPortBase)
	clients := make([]*client.Client, processes)
	for i := range clients {
		c, err := client.New(client.Config{URLs: []string{ts.url}, Token: deployToken, Lease: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = c
	}
	spec := backend.ContainerSpec{Pool: pool, Resources: backend.Resources{MilliCPU: 1, MemoryBytes: 1}}
	ctx := context.Background()
	return measure(t, processes*parallelism, func(w, i int) error {
		c := clients[w%processes]
		s := spec
		s.Name = fmt.Sprintf("w%d-%d", w, i)
		for range 2 { // the plan, then the apply's re-plan
			if planned, err := c.PlanContainer(ctx, s); err != nil || planned.Host == "" {
				return fmt.Errorf("lease %s: host %q: %w", s.Name, planned.Host, err)
			}
		}
		return c.GiveBack(ctx, pool, s.Name)
	})
}

// httpPlacements measures lease + renew + release through the HTTP API,
// one request per step, from benchClients clients that do not coalesce:
// three mutating requests, each with its Idempotency-Key and durable record.
func httpPlacements(t *testing.T, env *testenv.Env, st store.Store, pool string) placementFigures {
	ts := startServer(t, env, st, Config{}, pool)
	ts.applyTestPool(t, pool, 1_000_000, benchPortBase)
	ts.http = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchClients, MaxConnsPerHost: benchClients}}
	spec := backend.ContainerSpec{Pool: pool, Resources: backend.Resources{MilliCPU: 1, MemoryBytes: 1}}
	return measure(t, benchClients, func(w, i int) error {
		s := spec
		s.Name = fmt.Sprintf("w%d-%d", w, i)
		req := api.LeaseRequest{Spec: s, TTL: time.Minute}
		var lease api.Lease
		for _, key := range []string{s.Name + "/plan", s.Name + "/apply"} {
			r := ts.call(t, "POST", api.PathLeases, deployToken, key, req)
			if r.status != http.StatusOK {
				return fmt.Errorf("lease: %s", r)
			}
			if lease.ID == "" {
				lease = decodeLease(r)
			}
		}
		if r := ts.call(t, "DELETE", api.LeasePath(lease.ID), deployToken, s.Name+"/release", nil); r.status != http.StatusNoContent {
			return fmt.Errorf("release: %s", r)
		}
		return nil
	})
}

// httpFloor is the same three-request flow against a bare net/http server
// that only decodes and echoes the JSON: what HTTP alone allows on this
// machine for clients that do not coalesce, whatever berthd does.
func httpFloor(t *testing.T) placementFigures {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v any
		_ = json.NewDecoder(r.Body).Decode(&v)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}))
	t.Cleanup(echo.Close)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchClients, MaxConnsPerHost: benchClients}}
	body, err := json.Marshal(api.LeaseRequest{Spec: backend.ContainerSpec{Pool: "floor", Name: "w0-0", Resources: backend.Resources{MilliCPU: 1, MemoryBytes: 1}}, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return measure(t, benchClients, func(int, int) error {
		for range 3 {
			resp, err := hc.Post(echo.URL+api.PathLeases, "application/json", bytes.NewReader(body))
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return nil
	})
}

func decodeLease(r response) api.Lease {
	var l api.Lease
	_ = json.Unmarshal(r.body, &l)
	return l
}

// storePlacements is the store alone: the commits of the batched flow
// (each step of benchParallelism placements is one commit of their lease
// records with the batch's idempotency record), from benchClients
// goroutines; per placement, the time of its batch's three commits.
func storePlacements(t *testing.T, st store.Store) placementFigures {
	value := make([]byte, 400) // about a lease record
	answer := make([]byte, 400*benchParallelism)
	ctx := context.Background()
	figures := measure(t, benchClients, func(w, i int) error {
		for step, suffix := range []string{"/plan", "/apply", "/release"} {
			ops := make([]store.Op, 0, benchParallelism+1)
			for p := range benchParallelism {
				op := store.Op{Bucket: bucketLeases, Key: fmt.Sprintf("w%d-%d-%d", w, i, p)}
				if step < 2 {
					op.Value = value
				}
				ops = append(ops, op)
			}
			ops = append(ops, store.Op{Bucket: bucketIdempotency, Key: fmt.Sprintf("w%d-%d%s", w, i, suffix), Value: answer})
			if _, err := st.Commit(ctx, ops...); err != nil {
				return err
			}
		}
		return nil
	})
	figures.perSecond *= benchParallelism
	return figures
}

// TestBenchReport prints durable placements per second through berthd's
// HTTP API (fsync on), the store alone, and the same HTTP flow over an
// in-memory store, with ratios.
func TestBenchReport(t *testing.T) {
	env := testenv.Require(t)
	gcpace.UnlessSet() // as berthd and the provider run
	bolt := func() store.Store {
		st, err := store.OpenBolt(t.TempDir(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	durable := clientPlacements(t, env, bolt(), "bench-durable", benchClients, benchParallelism)
	oneClient := clientPlacements(t, env, bolt(), "bench-one-client", 1, benchClients)
	noCoalescing := clientPlacements(t, env, bolt(), "bench-no-coalescing", benchClients, 1)
	memory := clientPlacements(t, env, store.NewMemory(), "bench-memory", benchClients, benchParallelism)
	alone := storePlacements(t, bolt())
	single := httpPlacements(t, env, bolt(), "bench-single")
	singleMemory := httpPlacements(t, env, store.NewMemory(), "bench-single-memory")
	floor := httpFloor(t)
	row := func(name string, f placementFigures) {
		t.Logf("| %s | %.0f | %.2f ms | %.2f ms |", name, f.perSecond, float64(f.p50.Microseconds())/1000, float64(f.p99.Microseconds())/1000)
	}
	t.Logf("berthd placements (lease + renew + release), %s each, loopback HTTP, GC at %d%%:", benchDuration, gcpace.Percent)
	t.Logf("| configuration | placements/s | p50 | p99 |")
	t.Logf("| --- | ---: | ---: | ---: |")
	row(fmt.Sprintf("%d provider clients x %d operations at once (coalesced), bbolt, fsync on (durable)", benchClients, benchParallelism), durable)
	row(fmt.Sprintf("1 provider client x %d operations at once (coalesced), bbolt, fsync on", benchClients), oneClient)
	row(fmt.Sprintf("%d provider clients x 1 operation (nothing to coalesce), bbolt, fsync on", benchClients), noCoalescing)
	row("store alone: the same commits, bbolt, fsync on", alone)
	row(fmt.Sprintf("%d provider clients x %d operations, in-memory store (baseline)", benchClients, benchParallelism), memory)
	row("one request per step, no coalescing, bbolt, fsync on", single)
	row("one request per step, no coalescing, in-memory store", singleMemory)
	row(fmt.Sprintf("HTTP floor: %d clients x 3 requests to a bare net/http echo (no berthd)", benchClients), floor)
	t.Logf("durable : in-memory = %.2fx (the cost of durability)", durable.perSecond/memory.perSecond)
	t.Logf("durable : store alone = %.2fx (the cost of HTTP, auth, idempotency and scheduling)", durable.perSecond/alone.perSecond)
	t.Logf("coalesced : one request per step = %.2fx (durable)", durable.perSecond/single.perSecond)
	t.Logf("%d clients x 1 operation : HTTP floor = %.2fx (what berthd costs over HTTP itself, without coalescing)", benchClients, noCoalescing.perSecond/floor.perSecond)
	// Little's law: n placements in flight at r/s wait n/r on average.
	t.Logf("target >= 10,000 durable placements/s with p99 < 25 ms:")
	for _, c := range []struct {
		name     string
		f        placementFigures
		inFlight int
	}{
		{fmt.Sprintf("%d clients x %d operations", benchClients, benchParallelism), durable, benchClients * benchParallelism},
		{fmt.Sprintf("1 client x %d operations", benchClients), oneClient, benchClients},
		{fmt.Sprintf("%d clients x 1 operation", benchClients), noCoalescing, benchClients},
	} {
		t.Logf("  %s (%d in flight, mean wait >= %.1f ms at this rate): %s", c.name, c.inFlight,
			float64(c.inFlight)/c.f.perSecond*1000, verdict(c.f.meetsTarget()))
	}
	// Without coalescing, no server can beat HTTP itself on this machine.
	t.Logf("  the HTTP floor itself, %d clients x 3 requests to a bare echo server (no berthd): %s", benchClients,
		verdict(floor.meetsTarget()))
	t.Logf("load average: %s", loadAverage())
	// Replicated last: its cluster needs loopback ports another run may hold.
	replicated := clientPlacements(t, env, etcdStore(t, "http"), "bench-etcd", benchClients, benchParallelism)
	etcdAlone := storePlacements(t, etcdStore(t, "alone"))
	row("provider client, etcd store (3 members on loopback), fenced as a leader writes", replicated)
	row("store alone: the same commits, etcd (3 members), fenced", etcdAlone)
	t.Logf("etcd : bbolt = %.2fx (the cost of replication)", replicated.perSecond/durable.perSecond)
	t.Logf("load average at the end: %s", loadAverage())
}

// loadAverage is /proc/loadavg's first three fields: the machine is shared.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(data))[:3], " ")
}

// etcdStore is a store on a real three-member etcd cluster on loopback,
// fenced by a leader key as a replica's leader writes (one cluster per
// package run, a prefix per caller).
func etcdStore(t *testing.T, name string) store.Store {
	t.Helper()
	benchEtcd.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		dir := t.TempDir()
		benchEtcd.cluster, benchEtcd.err = etcdtest.Start(ctx, etcdtest.Options{Dir: dir})
		if benchEtcd.err == nil {
			t.Cleanup(func() { _ = benchEtcd.cluster.Stop(context.Background()) })
		}
	})
	if benchEtcd.err != nil {
		t.Fatal(benchEtcd.err)
	}
	st, err := store.OpenEtcd(store.EtcdConfig{Endpoints: benchEtcd.cluster.Endpoints(), Prefix: "/bench-" + name + "/"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	rev, err := st.Commit(context.Background(), store.Op{Bucket: "election", Key: "leader", Value: []byte("bench"), Expect: store.Absent})
	if err != nil {
		t.Fatal(err)
	}
	return st.Fenced(st.Prefix()+"election/leader", rev)
}

var benchEtcd struct {
	once    sync.Once
	cluster *etcdtest.Cluster
	err     error
}

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "NOT met"
}
