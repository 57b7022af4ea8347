package scheduler

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

const (
	mib = int64(1) << 20
	gib = int64(1) << 30
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fakeVerifier answers from a set of existing (host, lookup) pairs and
// records what it was asked.
type fakeVerifier struct {
	mu     sync.Mutex
	exists map[[2]string]bool
	asked  [][2]string
	err    error
}

func (v *fakeVerifier) ContainerExists(_ context.Context, host, id string) (bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.asked = append(v.asked, [2]string{host, id})
	return v.exists[[2]string{host, id}], v.err
}

// testScheduler is a scheduler with a fake clock and a fixed seed.
func testScheduler(t testing.TB, strategy Strategy, hosts ...Host) (*Scheduler, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	s := New(Config{Strategy: strategy, Clock: clock, Rand: rand.New(rand.NewPCG(1, 2)), LeaseTTL: time.Minute})
	s.SetHosts(hosts)
	return s, clock
}

// host is a healthy host with cpus CPUs and mem bytes, labels as k, v pairs.
func host(name string, cpus int64, mem int64, kv ...string) Host {
	labels := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		labels[kv[i]] = kv[i+1]
	}
	return Host{Name: name, Labels: labels, Capacity: Resources{MilliCPU: cpus * 1000, MemoryBytes: mem}, Healthy: true}
}

func mustReserve(t testing.TB, s *Scheduler, req Request) Reservation {
	t.Helper()
	r, err := s.Reserve(context.Background(), req)
	if err != nil {
		t.Fatalf("reserve %+v: %v", req, err)
	}
	return r
}

// usageOf returns one host's usage line.
func usageOf(t testing.TB, s *Scheduler, name string) HostUsage {
	t.Helper()
	for _, u := range s.Usage() {
		if u.Host.Name == name {
			return u
		}
	}
	t.Fatalf("no usage for host %s", name)
	return HostUsage{}
}
