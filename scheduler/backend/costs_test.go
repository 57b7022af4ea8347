package backend

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/berthsh/terraform-provider-berth/internal/testenv"
)

// TestEmbeddedPlanCostDoesNotGrowWithContainers counts the engine calls a
// new process makes to plan one more container (loading the pool's ledger
// included), per engine, with 3 and then 15 containers in the pool: the
// counts must be the same. Counts are deterministic where timings are not.
func TestEmbeddedPlanCostDoesNotGrowWithContainers(t *testing.T) {
	env := testenv.Require(t)
	b := newProcess(t, env)
	hosts := map[string]PoolHostSpec{}
	for i, e := range env.Engines {
		hosts[e.Name] = PoolHostSpec{MilliCPU: 8000, MemoryBytes: 8 << 30, PortMin: 63500 + 150*i, PortMax: 63649 + 150*i}
	}
	spec := PoolSpec{Name: "bk-perf-costs", Strategy: "spread", Hosts: hosts}
	ctx := context.Background()
	if _, err := b.ApplyPool(ctx, spec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, e := range env.Engines {
			if eng, err := b.engines.Get(e.Name); err == nil {
				listed, _ := eng.ListContainers(ctx, spec.Name)
				for _, c := range listed {
					_ = eng.Remove(ctx, c.ID)
				}
			}
		}
		_ = b.DeletePool(ctx, spec.Name)
	})

	created := 0
	grow := func(to int) {
		var wg sync.WaitGroup
		errs := make(chan error, to)
		for i := created; i < to; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := b.CreateContainer(ctx, webSpec(env, spec.Name, fmt.Sprintf("web-%d", i)))
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		created = to
	}
	planOneMore := func() map[string]int64 {
		p := newProcess(t, env)
		if _, err := p.PlanContainer(ctx, webSpec(env, spec.Name, "one-more")); err != nil {
			t.Fatal(err)
		}
		calls := map[string]int64{}
		for _, e := range env.Engines {
			eng, err := p.engines.Get(e.Name)
			if err != nil {
				t.Fatal(err)
			}
			calls[e.Name] = eng.Calls()
		}
		return calls
	}

	grow(3)
	few := planOneMore()
	grow(15)
	many := planOneMore()
	t.Logf("engine calls to plan one more container: with 3 in the pool %v, with 15 %v", few, many)
	for _, e := range env.Engines {
		if many[e.Name] != few[e.Name] || few[e.Name] == 0 {
			t.Errorf("%s: %d engine calls with 3 containers in the pool, %d with 15: want the same (and some)", e.Name, few[e.Name], many[e.Name])
		}
	}
}
