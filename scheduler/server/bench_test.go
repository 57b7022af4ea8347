//go:build bench

package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/etcdtest"
	"github.com/berthsh/terraform-provider-berth/internal/testenv"
	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
	"github.com/berthsh/terraform-provider-berth/scheduler/store"
)

const (
	benchClients  = 64
	benchDuration = 5 * time.Second
)

// placementFigures is one measured configuration.
type placementFigures struct {
	perSecond float64
	p50, p99  time.Duration
}

// measure runs place from benchClients goroutines for benchDuration and
// times each placement.
func measure(t *testing.T, place func(worker, i int) error) placementFigures {
	t.Helper()
	var mu sync.Mutex
	var latencies []time.Duration
	var failures atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(benchDuration)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range benchClients {
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

// httpPlacements measures lease + renew + release through the HTTP API:
// three mutating requests, each with its Idempotency-Key and durable
// record, as a plan, the apply's re-plan and a release make them. (A bind
// creates a Docker container; it is left out, so that the figure is
// berthd's own cost.)
func httpPlacements(t *testing.T, env *testenv.Env, st store.Store, pool string, portBase int) placementFigures {
	ts := startServer(t, env, st, Config{}, pool)
	ts.applyTestPool(t, pool, 1_000_000, portBase)
	ts.http = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchClients, MaxConnsPerHost: benchClients}}
	spec := backend.ContainerSpec{Pool: pool, Resources: backend.Resources{MilliCPU: 1, MemoryBytes: 1}}
	return measure(t, func(w, i int) error {
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

func decodeLease(r response) api.Lease {
	var l api.Lease
	_ = json.Unmarshal(r.body, &l)
	return l
}

// storePlacements is the store alone: the three commits one placement
// makes (each request's change with its idempotency record), from 64
// goroutines.
func storePlacements(t *testing.T, st store.Store) placementFigures {
	value := make([]byte, 400) // about a lease record
	ctx := context.Background()
	return measure(t, func(w, i int) error {
		key := fmt.Sprintf("w%d-%d", w, i)
		for _, ops := range [][]store.Op{
			{{Bucket: bucketLeases, Key: key, Value: value}, {Bucket: bucketIdempotency, Key: key + "/plan", Value: value}},
			{{Bucket: bucketLeases, Key: key, Value: value}, {Bucket: bucketIdempotency, Key: key + "/apply", Value: value}},
			{{Bucket: bucketLeases, Key: key}, {Bucket: bucketIdempotency, Key: key + "/release", Value: value}},
		} {
			if _, err := st.Commit(ctx, ops...); err != nil {
				return err
			}
		}
		return nil
	})
}

// TestBenchReport prints durable placements per second through berthd's
// HTTP API (fsync on), the store alone, and the same HTTP flow over an
// in-memory store, with ratios.
func TestBenchReport(t *testing.T) {
	env := testenv.Require(t)
	bolt := func() store.Store {
		st, err := store.OpenBolt(t.TempDir(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	durable := httpPlacements(t, env, bolt(), "bench-durable", 34350)
	memory := httpPlacements(t, env, store.NewMemory(), "bench-memory", 34350)
	alone := storePlacements(t, bolt())
	replicated := httpPlacements(t, env, etcdStore(t, "http"), "bench-etcd", 34350)
	etcdAlone := storePlacements(t, etcdStore(t, "alone"))
	row := func(name string, f placementFigures) {
		t.Logf("| %s | %.0f | %.2f ms | %.2f ms |", name, f.perSecond, float64(f.p50.Microseconds())/1000, float64(f.p99.Microseconds())/1000)
	}
	t.Logf("berthd placements (lease + renew + release), %d concurrent clients, %s each, loopback HTTP:", benchClients, benchDuration)
	t.Logf("| configuration | placements/s | p50 | p99 |")
	t.Logf("| --- | ---: | ---: | ---: |")
	row("HTTP API, bbolt store, fsync on (durable)", durable)
	row("store alone: the 3 commits of a placement, bbolt, fsync on", alone)
	row("HTTP API, in-memory store (baseline)", memory)
	row("HTTP API, etcd store (3 members on loopback), fenced as a leader writes", replicated)
	row("store alone: the 3 commits of a placement, etcd (3 members), fenced", etcdAlone)
	t.Logf("etcd HTTP : bbolt HTTP = %.2fx (the cost of replication)", replicated.perSecond/durable.perSecond)
	t.Logf("durable HTTP : in-memory HTTP = %.2fx (the cost of durability)", durable.perSecond/memory.perSecond)
	t.Logf("durable HTTP : store alone = %.2fx (the cost of HTTP, auth, idempotency and scheduling)", durable.perSecond/alone.perSecond)
	t.Logf("target: >= 10,000 durable placements/s with p99 < 25 ms: %s", verdict(durable.perSecond >= 10_000 && durable.p99 < 25*time.Millisecond))
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
