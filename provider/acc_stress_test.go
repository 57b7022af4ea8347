package provider

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 6 item 13 with the real provider binary: three `terraform apply`
// processes, each in its own directory, race for one small host (5 slots
// on every dimension) round after round. After every round the engine
// holds no more than the host's capacity, every container there is in a
// state, and the losers say that no host fits. The cost of the race is
// reported: the yields the provider processes logged (TF_LOG_PROVIDER),
// and the slots left empty when both sides of a race gave way.
func TestAccStressRacingAppliesOnOneSmallHost(t *testing.T) {
	env := accEnv(t)
	set := accEngines(t, env)
	const pool = "ps-stress"
	cleanupPool(t, set, pool)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	const processes, each, rounds = 3, 4, 4
	const slots, hostCPU, hostMemory = 5, 1250, 320 << 20
	host := env.Engines[0].Name
	bin := buildProvider(t, env)
	owner := newCLIWorkspaceWith(t, env, bin, env.ProviderHCL()+accPool(pool, "spread",
		[]accPoolHost{{Engine: host, CPU: 1.25, Memory: "320MiB", PortMin: 63100, MaxPerHost: slots}}))
	t.Cleanup(func() { _, _ = owner.run(context.Background(), "destroy", "-auto-approve", "-no-color") })
	if out, err := owner.run(ctx, "apply", "-auto-approve", "-no-color"); err != nil {
		t.Fatalf("applying the pool: %v\n%s", err, out)
	}
	racers := make([]*cliWorkspace, processes)
	for p := range racers {
		prefix := fmt.Sprintf("s%d", p)
		racers[p] = newCLIWorkspaceWith(t, env, bin, env.ProviderHCL()+
			ccContainers(prefix, pool, env.Image, each, `cpu = 0.25`, `memory = "64MiB"`))
		t.Cleanup(func() {
			_, _ = racers[p].run(context.Background(), "destroy", "-auto-approve", "-refresh=false", "-no-color")
		})
	}
	eng, err := set.Get(host)
	if err != nil {
		t.Fatal(err)
	}

	yields, empty := 0, 0
	for round := range rounds {
		logs := make([]string, processes)
		type result struct {
			p, code int
			out     string
		}
		results := make(chan result, processes)
		start := make(chan struct{})
		for p, ws := range racers {
			logs[p] = filepath.Join(ws.dir, fmt.Sprintf("provider-%d.log", round))
			go func() {
				<-start
				cmd := ws.command(ctx, "apply", "-auto-approve", "-no-color")
				cmd.Env = append(cmd.Env, "TF_LOG_PROVIDER=INFO", "TF_LOG_PATH="+logs[p])
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				code := 0
				if err := cmd.Run(); err != nil {
					code = cmd.ProcessState.ExitCode()
				}
				results <- result{p: p, code: code, out: out.String()}
			}()
		}
		close(start)
		states := make([]map[string]string, processes)
		for range racers {
			r := <-results
			p := r.p
			states[p] = ccStateContainers(ctx, t, racers[p])
			if r.code != 0 && r.code != 1 {
				t.Errorf("round %d: apply %d exited %d:\n%s", round, p, r.code, r.out)
			}
			for _, e := range ccErrors(r.out) {
				if !strings.Contains(e, "no host fits") {
					t.Errorf("round %d: apply %d: an error without the no-fit explanation: %s", round, p, e)
				}
			}
		}
		onEngines := ccOnEngines(ctx, t, set, pool, host)
		ccCheckCapacity(t, onEngines, slots, hostCPU, hostMemory)
		if untracked := ccUntracked(onEngines, states...); len(untracked) > 0 {
			t.Errorf("round %d: containers no state knows: %v", round, untracked)
		}
		roundYields := 0
		for _, path := range logs {
			text, err := os.ReadFile(path)
			if err != nil || !strings.Contains(string(text), "terraform-provider-berth") {
				t.Fatalf("round %d: no provider log in %s (%v)", round, path, err)
			}
			roundYields += strings.Count(string(text), "berth: create yielded")
		}
		yields += roundYields
		empty += slots - len(onEngines[host])
		t.Logf("round %d: %d of %d slots taken by %d racing creates in %d applies; %d yields", round, len(onEngines[host]), slots, processes*each, processes, roundYields)
		// The next round starts from an empty host: each apply then sees its
		// containers gone and creates them again.
		for _, c := range onEngines[host] {
			if err := eng.Remove(ctx, c.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("over %d rounds: %d yields logged by the provider processes; %d of %d slots left empty by extra yields", rounds, yields, empty, rounds*slots)
}
