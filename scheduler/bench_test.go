package scheduler

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"text/tabwriter"
	"time"
)

var benchReport = flag.Bool("bench-report", false, "run TestBenchReport: placement benchmarks with baselines, printed as a table")

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

// TestBenchReport prints the benchmark table with baselines and ratios.
// It runs only with -bench-report (make bench).
func TestBenchReport(t *testing.T) {
	if !*benchReport {
		t.Skip("run with -bench-report (make bench)")
	}
	perSecond := func(r testing.BenchmarkResult, opsPerIteration int) float64 {
		return float64(r.N*opsPerIteration) / r.T.Seconds()
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(os.Stdout, "\nPlacements per second: reserve + release, constraints \"zone != c\" and \"~disk == ssd\", spread group, GOMAXPROCS=%d\n", runtimeProcs())
	fmt.Fprintln(w, "hosts\tgoroutines\tper-host CAS/s\tallocs/op\tglobal mutex/s\tCAS : mutex\t")
	got := map[[2]int]float64{}
	for _, h := range benchHosts {
		for _, g := range benchGoroutines {
			cas := testing.Benchmark(benchPlacement(h, g, false))
			mutex := testing.Benchmark(benchPlacement(h, g, true))
			got[[2]int{h, g}] = perSecond(cas, 1)
			fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%s\t%.2fx\t\n", formatCount(h), g,
				formatCount(int(perSecond(cas, 1))), cas.AllocsPerOp(), formatCount(int(perSecond(mutex, 1))), perSecond(cas, 1)/perSecond(mutex, 1))
		}
	}
	w.Flush()

	locked := testing.Benchmark(benchCreate(true))
	free := testing.Benchmark(benchCreate(false))
	lockedPer, freePer := locked.T/time.Duration(locked.N), free.T/time.Duration(free.N)
	fmt.Printf("\n%d concurrent place+create operations over %d hosts, %s simulated create:\n", createOps, createHosts, createLatency)
	fmt.Fprintln(w, "mode\twall time\toperations/s\t")
	fmt.Fprintf(w, "one lock across create (classic Swarm)\t%s\t%s\t\n", lockedPer.Round(time.Millisecond), formatCount(int(perSecond(locked, createOps))))
	fmt.Fprintf(w, "per-host reservations, create outside locks\t%s\t%s\t\n", freePer.Round(time.Millisecond), formatCount(int(perSecond(free, createOps))))
	w.Flush()
	speedup := float64(lockedPer) / float64(freePer)
	fmt.Printf("speed-up: %.1fx\n", speedup)

	fmt.Println("\nTargets:")
	target := func(what string, got, want float64, unit string) {
		verdict := "met"
		if got < want {
			verdict = "MISSED"
		}
		fmt.Printf("  %-52s %12s%s (target >= %s%s) %s\n", what, formatCount(int(got)), unit, formatCount(int(want)), unit, verdict)
	}
	target("1,000 hosts, 64 goroutines", got[[2]int{1000, 64}], 500000, "/s")
	target("10,000 hosts, 64 goroutines", got[[2]int{10000, 64}], 250000, "/s")
	target("create: per-host vs lock across create", speedup, 30, "x")
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
