package scheduler

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// benchScheduler is a pool of n hosts in three zones, a third with SSDs.
func benchScheduler(n int) *Scheduler {
	s := New(Config{Strategy: Spread, Rand: rand.New(rand.NewPCG(1, 2))})
	hosts := make([]Host, n)
	for i := range hosts {
		labels := map[string]string{"zone": string(rune('a' + i%3))}
		if i%3 == 1 {
			labels["disk"] = "ssd"
		}
		hosts[i] = Host{Name: fmt.Sprintf("node%05d", i), Labels: labels, Healthy: true,
			Capacity: Resources{MilliCPU: 64000, MemoryBytes: 256 * gib}, MaxContainers: 500}
	}
	s.SetHosts(hosts)
	return s
}

// benchRequest evaluates a hard and a soft constraint and a spread group.
func benchRequest(key string) Request {
	return Request{
		Key: key, Name: key,
		Resources:   Resources{MilliCPU: 100, MemoryBytes: 64 * mib},
		Constraints: []string{"zone != c", "~disk == ssd"},
		SpreadGroup: "web",
	}
}

// drive runs b.N operations split over a fixed number of goroutines.
func drive(b *testing.B, goroutines int, op func(g, i int)) {
	var wg sync.WaitGroup
	b.ResetTimer()
	for g := range goroutines {
		n := b.N / goroutines
		if g < b.N%goroutines {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				op(g, i)
			}
		}()
	}
	wg.Wait()
}

// placeAndRelease is one benchmark operation: reserve, then release. A
// non-nil global lock makes it the baseline: one mutex around select and
// reserve (and around release).
func placeAndRelease(b *testing.B, s *Scheduler, global *sync.Mutex, g, i int) {
	key := "g" + strconv.Itoa(g) + "-" + strconv.Itoa(i)
	if global != nil {
		global.Lock()
	}
	r, err := s.Reserve(context.Background(), benchRequest(key))
	if global != nil {
		global.Unlock()
	}
	if err != nil {
		b.Fatal(err)
	}
	if global != nil {
		global.Lock()
	}
	_ = s.Release(r.ID)
	if global != nil {
		global.Unlock()
	}
}

func benchPlacement(hosts, goroutines int, globalMutex bool) func(*testing.B) {
	return func(b *testing.B) {
		s := benchScheduler(hosts)
		var global *sync.Mutex
		if globalMutex {
			global = &sync.Mutex{}
		}
		b.ReportAllocs()
		drive(b, goroutines, func(g, i int) { placeAndRelease(b, s, global, g, i) })
	}
}

var (
	benchHosts      = []int{100, 1000, 10000}
	benchGoroutines = []int{1, 8, 64}
)

func BenchmarkPlacement(b *testing.B) {
	for _, h := range benchHosts {
		for _, g := range benchGoroutines {
			b.Run(fmt.Sprintf("hosts=%d/goroutines=%d/per-host-cas", h, g), benchPlacement(h, g, false))
			b.Run(fmt.Sprintf("hosts=%d/goroutines=%d/global-mutex", h, g), benchPlacement(h, g, true))
		}
	}
}

const (
	createOps     = 100
	createHosts   = 10
	createLatency = 20 * time.Millisecond
)

// benchCreate runs createOps concurrent place+create+bind operations over
// createHosts hosts per iteration, the create simulated by a sleep. With
// lockAcrossCreate one global lock is held from placement to bind, as
// classic Swarm did; otherwise only the per-host reservation is atomic and
// the create runs outside any lock.
func benchCreate(lockAcrossCreate bool) func(*testing.B) {
	return func(b *testing.B) {
		var global sync.Mutex
		for range b.N {
			b.StopTimer()
			s := benchScheduler(createHosts)
			b.StartTimer()
			var wg sync.WaitGroup
			for op := range createOps {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if lockAcrossCreate {
						global.Lock()
						defer global.Unlock()
					}
					r, err := s.Reserve(context.Background(), benchRequest("c"+strconv.Itoa(op)))
					if err != nil {
						b.Error(err)
						return
					}
					time.Sleep(createLatency) // the engine creates the container
					if _, err := s.Bind(r.ID, "container-"+strconv.Itoa(op)); err != nil {
						b.Error(err)
					}
				}()
			}
			wg.Wait()
		}
	}
}

func BenchmarkCreate(b *testing.B) {
	b.Run("lock-across-create", benchCreate(true))
	b.Run("per-host-reservations", benchCreate(false))
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
