package backend

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/internal/testenv"
	"github.com/berthsh/terraform-provider-berth/scheduler"
)

// newProcess returns a backend with its own engine clients, as a separate
// provider process would have.
func newProcess(t *testing.T, env *testenv.Env) *Embedded {
	t.Helper()
	cfgs := make([]engine.Config, 0, len(env.Engines))
	for _, e := range env.Engines {
		cfg := engine.Config{Name: e.Name, Endpoint: e.Endpoint}
		if e.TLS != nil {
			cfg.TLS = &engine.TLSConfig{CAPEM: e.TLS.CAPEM, CertPEM: e.TLS.CertPEM, KeyPEM: e.TLS.KeyPEM}
		}
		cfgs = append(cfgs, cfg)
	}
	set, err := engine.NewSet(cfgs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Close() })
	return NewEmbedded(set)
}

// testPool applies a pool whose hosts each take `slots` containers of
// 0.25 CPU, and removes every container and record of it at the end.
func testPool(t *testing.T, env *testenv.Env, b *Embedded, name string, slots int, portBase int) PoolSpec {
	t.Helper()
	spec := PoolSpec{Name: name, Strategy: "spread", Hosts: map[string]PoolHostSpec{}}
	for i, e := range env.Engines {
		spec.Hosts[e.Name] = PoolHostSpec{
			Labels:      map[string]string{"zone": fmt.Sprintf("z%d", i+1)},
			MilliCPU:    int64(slots) * 250,
			MemoryBytes: 1 << 30,
			PortMin:     portBase + i*100,
			PortMax:     portBase + i*100 + 99,
		}
	}
	ctx := context.Background()
	if _, err := b.ApplyPool(ctx, spec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, host := range keys(spec.Hosts) {
			eng, _ := b.engines.Get(host)
			listed, _ := eng.ListContainers(ctx, name)
			for _, c := range listed {
				_ = eng.Remove(ctx, c.ID)
			}
		}
		if err := b.DeletePool(ctx, name); err != nil {
			t.Errorf("deleting pool: %v", err)
		}
	})
	return spec
}

func webSpec(env *testenv.Env, pool, name string) ContainerSpec {
	return ContainerSpec{
		Pool: pool, Name: name, Image: env.Image,
		Resources:   Resources{MilliCPU: 250, MemoryBytes: 16 << 20},
		Ports:       []PortSpec{{Internal: 8080}},
		SpreadGroup: "web",
		Restart:     "no",
		StopTimeout: time.Second,
	}
}

// observedUsage is what the engines hold for the pool, per host.
func observedUsage(t *testing.T, b *Embedded, pool string, hosts []string) map[string][]engine.Container {
	t.Helper()
	out := map[string][]engine.Container{}
	for _, host := range hosts {
		containers, err := b.observe(context.Background(), host, pool)
		if err != nil {
			t.Fatal(err)
		}
		out[host] = containers
	}
	return out
}

func TestEmbeddedSpreadsParallelCreates(t *testing.T) {
	env := testenv.Require(t)
	b := newProcess(t, env)
	spec := testPool(t, env, b, "bk-spread", 4, 41000)
	ctx := context.Background()

	const n = 9
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = b.CreateContainer(ctx, webSpec(env, spec.Name, fmt.Sprintf("web-%d", i)))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	usage := observedUsage(t, b, spec.Name, keys(spec.Hosts))
	ports := map[int]bool{}
	for host, containers := range usage {
		if len(containers) != n/len(spec.Hosts) {
			t.Errorf("%s holds %d containers, want %d (spread)", host, len(containers), n/len(spec.Hosts))
		}
		for _, c := range containers {
			if !c.Running {
				t.Errorf("%s on %s is %s, want running", c.Name, host, c.State)
			}
			for _, p := range c.Ports {
				if ports[p.External] {
					t.Errorf("host port %d handed out twice", p.External)
				}
				ports[p.External] = true
			}
		}
	}
}

// Two processes with their own ledgers race for the same 12 slots: the
// engine verification must let exactly 12 containers stay, leave nothing
// behind for the losers and explain their failure.
func TestEmbeddedTwoProcessesNeverOvercommit(t *testing.T) {
	env := testenv.Require(t)
	first, second := newProcess(t, env), newProcess(t, env)
	spec := testPool(t, env, first, "bk-race", 4, 42000)
	ctx := context.Background()

	const perProcess = 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	created, failed := 0, 0
	for p, b := range []*Embedded{first, second} {
		for i := range perProcess {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := b.CreateContainer(ctx, webSpec(env, spec.Name, fmt.Sprintf("p%d-web-%d", p, i)))
				mu.Lock()
				defer mu.Unlock()
				var noFit *scheduler.NoFitError
				switch {
				case err == nil:
					created++
				case errors.As(err, &noFit):
					failed++
				default:
					t.Errorf("unexpected error: %v", err)
				}
			}()
		}
	}
	wg.Wait()

	capacity := 4 * len(spec.Hosts)
	if created != capacity || failed != 2*perProcess-capacity {
		t.Errorf("created %d and failed %d, want %d and %d", created, failed, capacity, 2*perProcess-capacity)
	}
	for host, containers := range observedUsage(t, first, spec.Name, keys(spec.Hosts)) {
		var cpu int64
		for _, c := range containers {
			cpu += c.MilliCPU
		}
		if cpu > spec.Hosts[host].MilliCPU {
			t.Errorf("%s overcommitted: %d millicores of %d", host, cpu, spec.Hosts[host].MilliCPU)
		}
		if len(containers) != 4 {
			t.Errorf("%s holds %d containers, want 4", host, len(containers))
		}
	}
}

func TestEmbeddedPlanCountsEachCreateOnce(t *testing.T) {
	env := testenv.Require(t)
	b := newProcess(t, env)
	spec := testPool(t, env, b, "bk-plan", 1, 43000)
	ctx := context.Background()

	for i := range len(spec.Hosts) {
		web := webSpec(env, spec.Name, fmt.Sprintf("web-%d", i))
		if _, err := b.PlanContainer(ctx, web); err != nil {
			t.Fatalf("planning %s: %v", web.Name, err)
		}
		// The apply process plans the same resource again: no double count.
		if _, err := b.PlanContainer(ctx, web); err != nil {
			t.Fatalf("re-planning %s: %v", web.Name, err)
		}
	}
	_, err := b.PlanContainer(ctx, webSpec(env, spec.Name, "web-extra"))
	var noFit *scheduler.NoFitError
	if !errors.As(err, &noFit) {
		t.Fatalf("planning past capacity: got %v, want a NoFitError", err)
	}
	if len(noFit.Rejections) != len(spec.Hosts) {
		t.Errorf("explanation names %d hosts, want %d: %v", len(noFit.Rejections), len(spec.Hosts), err)
	}
}

func TestEmbeddedRefusesToDeletePoolInUse(t *testing.T) {
	env := testenv.Require(t)
	b := newProcess(t, env)
	spec := testPool(t, env, b, "bk-inuse", 2, 44000)
	ctx := context.Background()
	state, err := b.CreateContainer(ctx, webSpec(env, spec.Name, "web-0"))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.DeletePool(ctx, spec.Name); err == nil {
		t.Fatal("deleting a pool with a container succeeded")
	}
	if err := b.DeleteContainer(ctx, state.Ref, time.Second); err != nil {
		t.Fatal(err)
	}
	got, err := b.ReadContainer(ctx, state.Ref)
	if err != nil || got != nil {
		t.Fatalf("read after delete: %v, %v; want nil, nil", got, err)
	}
}

func TestFitsInOrderYieldsToEarlierContainers(t *testing.T) {
	base := time.Unix(1700000000, 0)
	host := scheduler.Host{Name: "node1", Capacity: scheduler.Resources{MilliCPU: 1000, MemoryBytes: 1 << 30}}
	at := func(id string, ns int, cpu int64, port int) engine.Container {
		return engine.Container{ID: id, Created: base.Add(time.Duration(ns)), MilliCPU: cpu, MemoryBytes: 1 << 20,
			Ports: []engine.PortBinding{{Internal: 80, External: port}}}
	}
	tests := []struct {
		name   string
		mine   engine.Container
		others []engine.Container
		want   bool
	}{
		{"alone", at("m", 5, 1000, 1), nil, true},
		{"earlier takes the CPU", at("m", 5, 600, 1), []engine.Container{at("a", 1, 600, 2)}, false},
		{"later does not count", at("m", 5, 600, 1), []engine.Container{at("a", 9, 600, 2)}, true},
		{"earlier holds my port", at("m", 5, 100, 7), []engine.Container{at("a", 1, 100, 7)}, false},
		{"same instant: lower id wins", at("m", 5, 600, 1), []engine.Container{at("a", 5, 600, 2)}, false},
		{"same instant: higher id yields to me", at("a", 5, 600, 1), []engine.Container{at("m", 5, 600, 2)}, true},
	}
	running := func(c engine.Container) engine.Container { c.Running = true; return c }
	final := []struct {
		name   string
		mine   engine.Container
		others []engine.Container
		want   bool
	}{
		{"final: a later running one that missed mine", at("m", 5, 600, 1), []engine.Container{running(at("a", 9, 600, 2))}, false},
		{"final: a later one not running yet", at("m", 5, 600, 1), []engine.Container{at("a", 9, 600, 2)}, true},
		{"final: a later running one that fits", at("m", 5, 400, 1), []engine.Container{running(at("a", 9, 600, 2))}, true},
	}
	for _, tt := range final {
		t.Run(tt.name, func(t *testing.T) {
			if got := fitsInOrder(host, tt.mine, tt.others, 0, true); got != tt.want {
				t.Errorf("fitsInOrder(final) = %v, want %v", got, tt.want)
			}
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fitsInOrder(host, tt.mine, tt.others, 0, false); got != tt.want {
				t.Errorf("fitsInOrder = %v, want %v", got, tt.want)
			}
		})
	}
}
