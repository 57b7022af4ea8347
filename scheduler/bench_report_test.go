//go:build bench

package scheduler

import (
	"fmt"
	"os"
	"testing"
	"text/tabwriter"
	"time"
)

// TestBenchReport prints the benchmark table with baselines and ratios.
// It is built only with the bench tag (make bench), so that ordinary test
// runs neither pay for it nor count it as skipped.
func TestBenchReport(t *testing.T) {
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
