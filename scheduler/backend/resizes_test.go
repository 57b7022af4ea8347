package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/berthsh/terraform-provider-berth/internal/testenv"
	"github.com/berthsh/terraform-provider-berth/scheduler"
)

// Issue 6 item 3 across processes, on one host of 1 CPU. Pipeline B loads
// the pool while container m has 0.25 CPU; pipeline A resizes m to 0.75;
// B's create of 0.5 CPU must then yield (5 of 4 quarters otherwise). A
// resize that a racing create has made too big yields in turn and is
// rolled back; a fresh process counts the size m was resized to; and when
// a resize and a create race for real, they never both stay.
func TestEmbeddedResizeVerifiedAcrossProcesses(t *testing.T) {
	env := testenv.Require(t)
	ctx := context.Background()
	host := env.Engines[0].Name
	a := newProcess(t, env)
	spec := PoolSpec{Name: "bk-resize", Strategy: "spread", Hosts: map[string]PoolHostSpec{
		host: {MilliCPU: 1000, MemoryBytes: 1 << 30, PortMin: 63000, PortMax: 63099},
	}}
	if _, err := a.ApplyPool(ctx, spec); err != nil {
		t.Fatal(err)
	}
	eng, err := a.engines.Get(host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		listed, _ := eng.ListContainers(ctx, spec.Name)
		for _, c := range listed {
			_ = eng.Remove(ctx, c.ID)
		}
		if err := a.DeletePool(ctx, spec.Name); err != nil {
			t.Errorf("deleting pool: %v", err)
		}
		if left, err := eng.ListResizeMarkers(ctx, spec.Name, ""); err != nil || len(left) > 0 {
			t.Errorf("resize markers left after the pool's delete: %v (%v)", left, err)
		}
	})
	quarter := Resources{MilliCPU: 250, MemoryBytes: 16 << 20}
	threeQuarters := Resources{MilliCPU: 750, MemoryBytes: 16 << 20}
	sized := func(name string, cpu int64) ContainerSpec {
		s := webSpec(env, spec.Name, name)
		s.Resources.MilliCPU = cpu
		return s
	}
	// What Docker enforces on the host, whatever any ledger believes.
	onEngine := func(when string) {
		t.Helper()
		listed, err := eng.ListContainers(ctx, spec.Name)
		if err != nil {
			t.Fatal(err)
		}
		inspected, err := inspectAll(ctx, eng, listed)
		if err != nil {
			t.Fatal(err)
		}
		var cpu int64
		for _, c := range inspected {
			cpu += c.MilliCPU
		}
		if cpu > 1000 {
			t.Errorf("%s: %s overcommitted: Docker holds %d millicores for %d containers on 1000", when, host, cpu, len(inspected))
		}
	}
	counted := func() int64 { // what a process that loads the pool now reserves
		t.Helper()
		usage, err := newProcess(t, env).PoolUsage(ctx, spec.Name)
		if err != nil {
			t.Fatal(err)
		}
		return usage.Hosts[0].Reserved.MilliCPU
	}

	m, err := a.CreateContainer(ctx, sized("m", 250))
	if err != nil {
		t.Fatal(err)
	}
	b := newProcess(t, env)
	if _, err := b.PlanContainer(ctx, sized("n", 500)); err != nil {
		t.Fatalf("B plans n beside m at 0.25 CPU: %v", err)
	}
	if m, err = a.ResizeContainer(ctx, m, threeQuarters); err != nil {
		t.Fatalf("A resizes m to 0.75 CPU: %v", err)
	}
	if got := counted(); got != 750 {
		t.Errorf("a process loading the pool after the resize reserves %d millicores, want 750", got)
	}
	_, err = b.CreateContainer(ctx, sized("n", 500))
	var noFit *scheduler.NoFitError
	if !errors.As(err, &noFit) || !strings.Contains(err.Error(), "CPU") {
		t.Errorf("B's create beside the resized m: %v, want no room (CPU)", err)
	}
	onEngine("after B's create")

	// Shrinking is recorded too.
	if m, err = a.ResizeContainer(ctx, m, quarter); err != nil {
		t.Fatalf("A shrinks m back to 0.25 CPU: %v", err)
	}
	if got := counted(); got != 250 {
		t.Errorf("after the shrink a loading process reserves %d millicores, want 250", got)
	}

	// A loads the pool anew; B creates n (0.5 CPU) behind its back; A's
	// resize of m to 0.75 then overflows the host and is rolled back.
	a = newProcess(t, env)
	if fits, _, err := a.PlanResize(ctx, m, threeQuarters); err != nil || !fits {
		t.Fatal(err)
	}
	n, err := newProcess(t, env).CreateContainer(ctx, sized("n", 500))
	if err != nil {
		t.Fatalf("B creates n: %v", err)
	}
	_, err = a.ResizeContainer(ctx, m, threeQuarters)
	if !errors.Is(err, errResizeYielded) || !strings.Contains(err.Error(), "keeps 0.25 CPU") {
		t.Errorf("A's resize of m beside n: %v, want it to yield and keep 0.25 CPU", err)
	}
	if inspected, err := eng.InspectContainer(ctx, m.Ref.ContainerID); err != nil || inspected == nil || inspected.MilliCPU != 250 {
		t.Errorf("m after the rolled-back resize: %+v (%v), want 250 millicores again", inspected, err)
	}
	if got := counted(); got != 750 {
		t.Errorf("after the rolled-back resize a loading process reserves %d millicores, want 750 (m 250 + n 500)", got)
	}
	onEngine("after A's resize")
	if err := a.DeleteContainer(ctx, n.Ref, 0); err != nil {
		t.Fatal(err)
	}

	// A resize and a create racing for real: never both.
	for round := range 4 {
		resizer, creator := newProcess(t, env), newProcess(t, env)
		if fits, _, err := resizer.PlanResize(ctx, m, threeQuarters); err != nil || !fits {
			t.Fatal(err)
		}
		if _, err := creator.PlanContainer(ctx, sized(fmt.Sprintf("race-%d", round), 500)); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var resized ContainerState
		var resizeErr, createErr error
		var made ContainerState
		wg.Add(2)
		go func() { defer wg.Done(); resized, resizeErr = resizer.ResizeContainer(ctx, m, threeQuarters) }()
		go func() {
			defer wg.Done()
			made, createErr = creator.CreateContainer(ctx, sized(fmt.Sprintf("race-%d", round), 500))
		}()
		wg.Wait()
		t.Logf("round %d: resize: %v; create: %v", round, resizeErr, createErr)
		if resizeErr == nil && createErr == nil {
			t.Errorf("round %d: both the resize and the create stayed", round)
		}
		onEngine(fmt.Sprintf("round %d", round))
		if createErr == nil {
			if err := creator.DeleteContainer(ctx, made.Ref, 0); err != nil {
				t.Fatal(err)
			}
		}
		if resizeErr == nil {
			if m, err = newProcess(t, env).ResizeContainer(ctx, resized, quarter); err != nil {
				t.Fatal(err)
			}
		}
	}
	markers, err := eng.ListResizeMarkers(ctx, spec.Name, m.Ref.ContainerID)
	if err != nil || len(markers) != 1 || markers[0].MilliCPU != 250 {
		t.Errorf("m's resize markers: %+v (%v), want the newest alone, at 250 millicores", markers, err)
	}
	if err := a.DeleteContainer(ctx, m.Ref, 0); err != nil {
		t.Fatal(err)
	}
	if left, err := eng.ListResizeMarkers(ctx, spec.Name, ""); err != nil || len(left) > 0 {
		t.Errorf("resize markers left after m's delete: %+v (%v)", left, err)
	}
}
