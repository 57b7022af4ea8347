package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
)

// Concurrency acceptance tests through the real provider binary and CLI:
// an engine lost in the middle of an apply, and two applies racing for one
// pool. Pools are named pb-*; host ports stay within 51000-52999.

// ccContainers renders count berth_containers named prefix-0.. in a pool
// referred to by name (the pool resource may live in another workspace).
func ccContainers(prefix, pool, image string, count int, attrs ...string) string {
	var b strings.Builder
	for i := range count {
		fmt.Fprintf(&b, "resource \"berth_container\" \"%s%d\" {\n  pool  = %q\n  name  = \"%s-%d\"\n  image = %q\n  %s\n}\n",
			prefix, i, pool, prefix, i, image, strings.Join(attrs, "\n  "))
	}
	return b.String()
}

// ccStateContainers reads the workspace's state: container id -> name@host,
// with " (tainted)" after the containers of failed creates.
func ccStateContainers(ctx context.Context, t *testing.T, ws *cliWorkspace) map[string]string {
	t.Helper()
	out, err := ws.command(ctx, "show", "-json", "-no-color").Output()
	if err != nil {
		t.Fatalf("terraform show -json: %v", err)
	}
	var shown struct {
		Values struct {
			RootModule struct {
				Resources []struct {
					Type    string         `json:"type"`
					Tainted bool           `json:"tainted"`
					Values  map[string]any `json:"values"`
				} `json:"resources"`
			} `json:"root_module"`
		} `json:"values"`
	}
	if err := json.Unmarshal(out, &shown); err != nil {
		t.Fatalf("terraform show -json: %v\n%s", err, out)
	}
	containers := map[string]string{}
	for _, r := range shown.Values.RootModule.Resources {
		if r.Type == "berth_container" {
			desc := fmt.Sprintf("%v@%v", r.Values["name"], r.Values["host"])
			if r.Tainted {
				desc += " (tainted)"
			}
			containers[fmt.Sprint(r.Values["container_id"])] = desc
		}
	}
	return containers
}

// ccErrors returns the text of each error diagnostic in -no-color output,
// with line wrapping taken out.
func ccErrors(output string) []string {
	starts := ccDiagnosticStart.FindAllStringIndex(output, -1)
	var errs []string
	for i, start := range starts {
		end := len(output)
		if i+1 < len(starts) {
			end = starts[i+1][0]
		}
		if text := output[start[0]:end]; strings.HasPrefix(text, "Error: ") {
			errs = append(errs, strings.Join(strings.Fields(text), " "))
		}
	}
	return errs
}

var ccDiagnosticStart = regexp.MustCompile(`(?m)^(Error|Warning): `)

// ccExitCode runs Terraform and returns its exit code and output.
func ccExitCode(ctx context.Context, t *testing.T, ws *cliWorkspace, args ...string) (int, string) {
	t.Helper()
	out, err := ws.run(ctx, args...)
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out
	case errors.As(err, &exit):
		return exit.ExitCode(), out
	}
	t.Fatalf("terraform %s: %v\n%s", strings.Join(args, " "), err, out)
	return 0, ""
}

// ccOnEngines lists the pool's containers on the given engines, inspected

// ccBackgroundApply is an apply running in the background, for tests that
// act on the engines while it is under way.
type ccBackgroundApply struct {
	cmd    *exec.Cmd
	output bytes.Buffer
	done   chan error
}

// ccStartApplyUntil starts `terraform apply args...` and returns once the
// pool has at least atLeast containers on the engines (their count is the
// second result). It fails the test if the apply ends first.
func ccStartApplyUntil(ctx context.Context, t *testing.T, ws *cliWorkspace, set *engine.Set, pool string, atLeast int, args ...string) (*ccBackgroundApply, int) {
	t.Helper()
	a := &ccBackgroundApply{cmd: ws.command(ctx, append([]string{"apply"}, args...)...), done: make(chan error, 1)}
	a.cmd.Stdout, a.cmd.Stderr = &a.output, &a.output
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.done <- a.cmd.Wait() }()
	for {
		select {
		case err := <-a.done:
			t.Fatalf("the apply ended before %d container(s) showed up on the engines: %v\n%s", atLeast, err, a.output.String())
		case <-time.After(100 * time.Millisecond):
		}
		byHost, err := poolContainers(ctx, set, pool)
		if err != nil {
			t.Fatal(err)
		}
		if n := lcCount(byHost); n >= atLeast {
			return a, n
		}
	}
}

// wait waits for the apply to end and returns its output and error.
func (a *ccBackgroundApply) wait() (string, error) {
	err := <-a.done
	return a.output.String(), err
}

// (real limits, exact state).
func ccOnEngines(ctx context.Context, t *testing.T, set *engine.Set, pool string, hosts ...string) map[string][]engine.Container {
	t.Helper()
	out := map[string][]engine.Container{}
	for _, host := range hosts {
		eng, err := set.Get(host)
		if err != nil {
			t.Fatal(err)
		}
		listed, err := eng.ListContainers(ctx, pool)
		if err != nil {
			t.Fatalf("listing %s: %v", host, err)
		}
		for _, c := range listed {
			inspected, err := eng.InspectContainer(ctx, c.ID)
			if err != nil {
				t.Fatalf("inspecting %s on %s: %v", c.Name, host, err)
			}
			if inspected != nil {
				out[host] = append(out[host], *inspected)
			}
		}
	}
	return out
}

// ccUntracked lists containers on the engines that no state knows.
func ccUntracked(onEngines map[string][]engine.Container, states ...map[string]string) []string {
	var untracked []string
	for host, cs := range onEngines {
		for _, c := range cs {
			tracked := false
			for _, state := range states {
				_, ok := state[c.ID]
				tracked = tracked || ok
			}
			if !tracked {
				untracked = append(untracked, fmt.Sprintf("%s@%s (%s, %s)", c.Name, host, shortID(c.ID), c.State))
			}
		}
	}
	sort.Strings(untracked)
	return untracked
}

// ccCheckCapacity fails the test when a host holds more than its capacity
// on any dimension, or two containers publish one host port.
func ccCheckCapacity(t *testing.T, onEngines map[string][]engine.Container, slots int, cpu, memory int64) {
	t.Helper()
	ports := map[string]string{}
	for host, cs := range onEngines {
		var usedCPU, usedMemory int64
		for _, c := range cs {
			usedCPU += c.MilliCPU
			usedMemory += c.MemoryBytes
			for _, p := range c.Ports {
				key := fmt.Sprintf("%d/%s", p.External, p.Protocol)
				if other, taken := ports[key]; taken {
					t.Errorf("host port %s is published by %s and by %s@%s", key, other, c.Name, host)
				}
				ports[key] = c.Name + "@" + host
			}
		}
		if len(cs) > slots || usedCPU > cpu || usedMemory > memory {
			t.Errorf("%s is overcommitted: %d containers, %dm CPU, %d bytes (capacity %d, %dm, %d)",
				host, len(cs), usedCPU, usedMemory, slots, cpu, memory)
		}
	}
}

// ccResult is one workspace's apply: exit code (-1 when Terraform did not
// run) and output.
type ccResult struct {
	prefix string
	code   int
	out    string
}

// ccApply runs terraform apply -auto-approve in ws.
func ccApply(ctx context.Context, ws *cliWorkspace, args ...string) ccResult {
	out, err := ws.run(ctx, append([]string{"apply", "-auto-approve", "-no-color"}, args...)...)
	var exit *exec.ExitError
	switch {
	case err == nil:
		return ccResult{out: out}
	case errors.As(err, &exit):
		return ccResult{code: exit.ExitCode(), out: out}
	}
	return ccResult{code: -1, out: out + "\n" + err.Error()}
}

// ccApplyAll starts every workspace's apply at the same moment; results
// arrive as the applies finish.
func ccApplyAll(ctx context.Context, racers map[string]*cliWorkspace) <-chan ccResult {
	results := make(chan ccResult, len(racers))
	start := make(chan struct{})
	for prefix, ws := range racers {
		go func() {
			<-start
			r := ccApply(ctx, ws)
			r.prefix = prefix
			results <- r
		}()
	}
	close(start)
	return results
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// An engine stopped while an apply creates containers: the creates on the
// other engines succeed, the failures name the lost host, nothing is
// leaked, and once the engine is back a later apply converges.
func TestAccEngineStoppedMidApply(t *testing.T) { // not parallel: stops a shared engine
	env := accEnv(t)
	set := accEngines(t, env)
	const pool, lost = "pb-lost", "node2"
	cleanupPool(t, set, pool)
	// Registered after cleanupPool, so it runs first: the cleanup needs the engine.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := env.StartEngine(ctx, lost); err != nil {
			t.Errorf("restarting %s: %v", lost, err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	// Three slots per host and nine containers: whatever node2 cannot
	// take cannot go elsewhere either, so some creates must fail.
	hosts := accHosts(env, 1, "512MiB", 51000)
	for i := range hosts {
		hosts[i].MaxPerHost = 3
	}
	poolHCL := env.ProviderHCL() + accPool(pool, "spread", hosts)
	ws := newCLIWorkspace(t, env, poolHCL)
	t.Cleanup(func() { _, _ = ws.run(context.Background(), "destroy", "-auto-approve", "-refresh=false", "-no-color") })
	if out, err := ws.run(ctx, "apply", "-auto-approve", "-no-color"); err != nil {
		t.Fatalf("applying the pool: %v\n%s", err, out)
	}
	// A healthcheck makes each create last a second or two, so the engine
	// goes down while creates are under way.
	ws.write(poolHCL + ccContainers("w", pool, env.Image, 9,
		`cpu = 0.1`, `memory = "16MiB"`, `ports = [{ internal = 8080 }]`,
		`healthcheck = { test = ["CMD", "/app", "healthcheck"], interval = "2s" }`))

	// Stop the engine once the first container exists anywhere.
	apply, seen := ccStartApplyUntil(ctx, t, ws, set, pool, 1, "-auto-approve", "-no-color", "-parallelism=3")
	began := time.Now()
	if err := env.StopEngine(ctx, lost); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped %s in %s; %d container(s) were on the engines", lost, time.Since(began).Round(time.Millisecond), seen)
	out, applyErr := apply.wait()
	t.Logf("apply with %s lost: %v\n%s", lost, applyErr, out)

	state := ccStateContainers(ctx, t, ws)
	healthy := ccOnEngines(ctx, t, set, pool, "node1", "node3")
	errs := ccErrors(out)
	switch {
	case applyErr == nil && len(state) != 9:
		t.Errorf("the apply succeeded with %d containers in state, want 9", len(state))
	case applyErr != nil && len(errs) == 0:
		t.Errorf("the apply failed without an error diagnostic:\n%s", out)
	}
	for _, e := range errs {
		if !strings.Contains(e, lost) {
			t.Errorf("an error does not name %s: %s", lost, e)
		}
	}
	// Every create either completed or reported an error; a container its
	// failed create could not remove is in state, tainted, on the lost host.
	complete := 0
	for id, desc := range state {
		if !strings.HasSuffix(desc, " (tainted)") {
			complete++
		} else if !strings.Contains(desc, "@"+lost) {
			t.Errorf("container %s (%s) is tainted but not on %s", desc, shortID(id), lost)
		}
	}
	if 9-complete != len(errs) {
		t.Errorf("%d creates did not complete but %d errors were reported", 9-complete, len(errs))
	}
	t.Logf("%d created, %d tainted, %d errors", complete, len(state)-complete, len(errs))
	// The other engines are fine: what they run is running and in state.
	for host, cs := range healthy {
		if len(cs) > 3 {
			t.Errorf("%s holds %d containers, more than its 3 slots", host, len(cs))
		}
		for _, c := range cs {
			if !c.Running {
				t.Errorf("%s on %s is %s", c.Name, host, c.State)
			}
		}
	}
	if untracked := ccUntracked(healthy, state); len(untracked) > 0 {
		t.Errorf("containers on the healthy engines that no state knows: %v", untracked)
	}

	// The engine comes back with what it had: nothing there may be unknown
	// to the state either (a create cut off halfway must not leak).
	if err := env.StartEngine(ctx, lost); err != nil {
		t.Fatal(err)
	}
	if untracked := ccUntracked(ccOnEngines(ctx, t, set, pool, lost), state); len(untracked) > 0 {
		t.Errorf("containers left on %s that no state knows: %v", lost, untracked)
	}

	if code, out := ccExitCode(ctx, t, ws, "apply", "-auto-approve", "-no-color"); code != 0 {
		t.Fatalf("the apply after %s came back exited %d:\n%s", lost, code, out)
	}
	if code, out := ccExitCode(ctx, t, ws, "plan", "-detailed-exitcode", "-no-color"); code != 0 {
		t.Errorf("plan after converging exited %d, want 0 (no changes):\n%s", code, out)
	}
	all := ccOnEngines(ctx, t, set, pool, set.Names()...)
	state = ccStateContainers(ctx, t, ws)
	if n := lcCount(all); n != 9 || len(state) != 9 {
		t.Errorf("after converging: %d containers on the engines, %d in state, want 9", n, len(state))
	}
	for host, cs := range all {
		for _, c := range cs {
			if !c.Running {
				t.Errorf("after converging, %s on %s is %s", c.Name, host, c.State)
			}
		}
	}
	if untracked := ccUntracked(all, state); len(untracked) > 0 {
		t.Errorf("after converging, containers no state knows: %v", untracked)
	}
}

// Two applies in separate directories, started together, ask for more of
// one pool than it holds: no host is overcommitted on any dimension, every
// container on the engines is in one of the states, and the creates that
// lost say that no host fits.
func TestAccConcurrentAppliesNeverOvercommit(t *testing.T) {
	t.Parallel()
	env := accEnv(t)
	set := accEngines(t, env)
	const pool = "pb-race"
	cleanupPool(t, set, pool)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	// Four slots per host on every dimension: CPU, memory and max_containers.
	const perHost, hostCPU, hostMemory = 4, 1000, 256 << 20
	hosts := accHosts(env, 1, "256MiB", 52000)
	for i := range hosts {
		hosts[i].MaxPerHost = perHost
	}
	owner := newCLIWorkspace(t, env, env.ProviderHCL()+accPool(pool, "spread", hosts))
	t.Cleanup(func() { _, _ = owner.run(context.Background(), "destroy", "-auto-approve", "-no-color") })
	if out, err := owner.run(ctx, "apply", "-auto-approve", "-no-color"); err != nil {
		t.Fatalf("applying the pool: %v\n%s", err, out)
	}

	const each = 10
	racers := map[string]*cliWorkspace{}
	for _, prefix := range []string{"a", "b"} {
		// Half publish a port, which the engine itself would refuse to
		// bind twice; the other half rely on Berth's verification alone.
		ws := newCLIWorkspace(t, env, env.ProviderHCL()+
			ccContainers(prefix+"p", pool, env.Image, each/2, `cpu = 0.25`, `memory = "64MiB"`, `ports = [{ internal = 8080 }]`)+
			ccContainers(prefix, pool, env.Image, each-each/2, `cpu = 0.25`, `memory = "64MiB"`))
		// Before the owner's destroy (cleanups run last first).
		t.Cleanup(func() { _, _ = ws.run(context.Background(), "destroy", "-auto-approve", "-refresh=false", "-no-color") })
		racers[prefix] = ws
	}

	results := ccApplyAll(ctx, racers)

	states := map[string]map[string]string{}
	created := 0
	for range racers {
		r := <-results
		state := ccStateContainers(ctx, t, racers[r.prefix])
		states[r.prefix] = state
		created += len(state)
		errs := ccErrors(r.out)
		t.Logf("apply %s: exit %d, %d created, %d errors", r.prefix, r.code, len(state), len(errs))
		if r.code != 0 && r.code != 1 {
			t.Errorf("apply %s exited %d:\n%s", r.prefix, r.code, r.out)
		}
		if (r.code == 0) != (len(state) == each) {
			t.Errorf("apply %s exited %d with %d of %d containers in state:\n%s", r.prefix, r.code, len(state), each, r.out)
		}
		if len(state) < each && len(errs) == 0 {
			t.Errorf("apply %s created %d of %d and reported no error:\n%s", r.prefix, len(state), each, r.out)
		}
		for _, e := range errs {
			if !strings.Contains(e, "no host fits") {
				t.Errorf("apply %s: an error without the no-fit explanation: %s", r.prefix, e)
				t.Log(r.out)
			}
		}
	}

	onEngines := ccOnEngines(ctx, t, set, pool, set.Names()...)
	t.Logf("on the engines: %d containers (%d in states); slots: %d", lcCount(onEngines), created, perHost*len(set.Names()))
	if n := lcCount(onEngines); n != created {
		t.Errorf("%d containers on the engines, but the applies created %d", n, created)
	}
	if untracked := ccUntracked(onEngines, states["a"], states["b"]); len(untracked) > 0 {
		t.Errorf("containers that no state knows: %v", untracked)
	}
	ccCheckCapacity(t, onEngines, perHost, hostCPU, hostMemory)
	if created > perHost*len(set.Names()) {
		t.Errorf("%d containers created for %d slots", created, perHost*len(set.Names()))
	}

	// -refresh=false: the refresh that destroy runs first is a normal plan,
	// which fails on the containers that did not fit (docs/resources/container.md).
	for prefix, ws := range racers {
		if out, err := ws.run(ctx, "destroy", "-auto-approve", "-refresh=false", "-no-color"); err != nil {
			t.Errorf("destroy %s: %v\n%s", prefix, err, out)
		}
	}
	if n := lcCount(ccOnEngines(ctx, t, set, pool, set.Names()...)); n != 0 {
		t.Errorf("%d containers left after both destroys", n)
	}
	if out, err := owner.run(ctx, "destroy", "-auto-approve", "-no-color"); err != nil {
		t.Errorf("destroying the pool: %v\n%s", err, out)
	}
}
