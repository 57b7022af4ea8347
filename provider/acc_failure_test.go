package provider

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/testenv"
)

// Failure acceptance tests through the real provider binary and CLI: what
// one container's own error, or one engine's, does to the rest of an
// apply. Pools are named pf-*; host ports stay within 40000-40999.

// Nine good containers and one whose image does not exist, in one apply:
// the nine land, the one fails once with an error naming its image, and no
// host is called unhealthy.
func TestAccBadImageFailsThatContainerOnly(t *testing.T) {
	t.Parallel()
	env := accEnv(t)
	set := accEngines(t, env)
	const pool = "pf-badimage"
	cleanupPool(t, set, pool)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	const missing = "berth-test/missing:1"
	config := env.ProviderHCL() + accPool(pool, "spread", accHosts(env, 2, "1GiB", 40000)) +
		ccContainers("w", "${berth_pool."+pool+".id}", env.Image, 9, `cpu = 0.1`, `memory = "32MiB"`, `ports = [{ internal = 8080 }]`) +
		`resource "berth_container" "bad" {
  pool   = berth_pool.` + pool + `.id
  name   = "bad"
  image  = "` + missing + `"
  cpu    = 0.1
  memory = "32MiB"
}
`
	ws := newCLIWorkspace(t, env, config)
	t.Cleanup(func() { _, _ = ws.run(context.Background(), "destroy", "-auto-approve", "-refresh=false", "-no-color") })

	code, out := ccExitCode(ctx, t, ws, "apply", "-auto-approve", "-no-color", "-parallelism=10")
	t.Logf("apply:\n%s", out)
	if code == 0 {
		t.Fatal("the apply succeeded with an image that does not exist")
	}
	errs := ccErrors(out)
	if len(errs) != 1 {
		t.Errorf("%d error diagnostics, want exactly one (the bad container's): %q", len(errs), errs)
	}
	for _, e := range errs {
		if !strings.Contains(e, "berth_container.bad") && !strings.Contains(e, pool+"/bad") {
			t.Errorf("the error is not the bad container's: %s", e)
		}
		if !strings.Contains(e, "refused the image "+missing) {
			t.Errorf("the error does not name the image %s: %s", missing, e)
		}
	}
	if strings.Contains(out, "unhealthy") {
		t.Errorf("a bad image made some host unhealthy")
	}

	state := ccStateContainers(ctx, t, ws)
	onEngines := ccOnEngines(ctx, t, set, pool, set.Names()...)
	running := 0
	for host, cs := range onEngines {
		for _, c := range cs {
			if c.Name == "bad" {
				t.Errorf("the bad container was left on %s", host)
			}
			if c.Running {
				running++
			}
		}
	}
	if len(state) != 9 || running != 9 {
		t.Errorf("%d containers in state and %d running, want the 9 good ones", len(state), running)
	}
	if untracked := ccUntracked(onEngines, state); len(untracked) > 0 {
		t.Errorf("containers no state knows: %v", untracked)
	}
}

// A wedged engine (its dockerd stopped with SIGSTOP: connections are
// accepted, nothing answers) does not hang `terraform plan`: every request
// to it ends at engine_timeout, and the errors say so and name it.
func TestAccWedgedEngineDoesNotHangPlan(t *testing.T) { // not parallel: freezes a shared engine
	env := accEnv(t)
	set := accEngines(t, env)
	const pool, wedged = "pf-wedged", "node2"
	cleanupPool(t, set, pool)
	dockerd := accDockerdPID(t, env, wedged)
	// Registered after cleanupPool, so it runs first: the cleanup needs the engine.
	t.Cleanup(func() { _ = syscall.Kill(dockerd, syscall.SIGCONT) })
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	resources := accPool(pool, "spread", accHosts(env, 2, "1GiB", 40300)) +
		ccContainers("w", "${berth_pool."+pool+".id}", env.Image, 6, `cpu = 0.1`, `memory = "32MiB"`)
	ws := newCLIWorkspace(t, env, env.ProviderHCL()+resources)
	t.Cleanup(func() { _, _ = ws.run(context.Background(), "destroy", "-auto-approve", "-refresh=false", "-no-color") })
	if out, err := ws.run(ctx, "apply", "-auto-approve", "-no-color"); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}

	// Only the provider block changes: the plan has nothing to do but read.
	ws.write(strings.Replace(env.ProviderHCL(), "provider \"berth\" {\n", "provider \"berth\" {\n  engine_timeout = \"5s\"\n", 1) + resources)
	if err := syscall.Kill(dockerd, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	code, out := ccExitCode(ctx, t, ws, "plan", "-no-color", "-parallelism=1")
	if err := syscall.Kill(dockerd, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	t.Logf("plan with %s wedged (exit %d):\n%s", wedged, code, out)
	if ctx.Err() != nil {
		t.Fatal("terraform plan hung on the wedged engine")
	}
	// Whether the plan fails on it or refreshes around it with warnings,
	// it must say that the engine did not answer in time.
	flat := strings.Join(strings.Fields(out), " ")
	if !strings.Contains(flat, "engine "+wedged) || !strings.Contains(flat, "no answer within 5s (engine_timeout)") {
		t.Fatalf("the plan did not report that %s did not answer in time", wedged)
	}
	for _, e := range ccErrors(out) {
		if !strings.Contains(e, "engine "+wedged) || !strings.Contains(e, "no answer within 5s (engine_timeout)") {
			t.Errorf("an error does not say that %s did not answer in time: %s", wedged, e)
		}
	}
	// Once it answers again, nothing needs to change.
	if code, out := ccExitCode(ctx, t, ws, "plan", "-no-color", "-detailed-exitcode"); code != 0 {
		t.Errorf("plan after the engine came back: exit %d\n%s", code, out)
	}
}

// accDockerdPID reads the pid of a test engine's dockerd.
func accDockerdPID(t *testing.T, env *testenv.Env, name string) int {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(env.Dir, name, "docker.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(text)))
	if err != nil {
		t.Fatalf("%s's docker.pid: %v", name, err)
	}
	return pid
}

// Ctrl-C (SIGINT to terraform) in the middle of an apply of 30 leaves no
// container that state does not know, and the next apply converges
// without "already exists".
func TestAccInterruptedApplyLeavesNothingUntracked(t *testing.T) {
	t.Parallel()
	env := accEnv(t)
	set := accEngines(t, env)
	const pool = "pf-sigint"
	cleanupPool(t, set, pool)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	config := env.ProviderHCL() + accPool(pool, "spread", accHosts(env, 4, "2GiB", 40600)) +
		ccContainers("w", "${berth_pool."+pool+".id}", env.Image, 30, `cpu = 0.1`, `memory = "16MiB"`, `ports = [{ internal = 8080 }]`,
			`healthcheck = { test = ["CMD", "/app", "healthcheck"], interval = "1s" }`)
	ws := newCLIWorkspace(t, env, config)
	t.Cleanup(func() { _, _ = ws.run(context.Background(), "destroy", "-auto-approve", "-refresh=false", "-no-color") })

	apply, seen := ccStartApplyUntil(ctx, t, ws, set, pool, 5, "-auto-approve", "-no-color", "-parallelism=10")
	if err := apply.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	t.Logf("interrupted with %d container(s) on the engines", seen)
	out, applyErr := apply.wait()
	t.Logf("interrupted apply: %v\n%s", applyErr, out)

	// Nothing is left that no state knows, not even a container created
	// but never started: a create cut by the interrupt removes what the
	// engine made, waiting briefly for the engine to register it.
	state := ccStateContainers(ctx, t, ws)
	if untracked := ccUntracked(ccOnEngines(ctx, t, set, pool, set.Names()...), state); len(untracked) > 0 {
		t.Errorf("after Ctrl-C, containers no state knows: %v", untracked)
	}
	t.Logf("%d container(s) in state after the interrupt", len(state))

	code, out := ccExitCode(ctx, t, ws, "apply", "-auto-approve", "-no-color", "-parallelism=10")
	if code != 0 || strings.Contains(out, "already exists") {
		t.Fatalf("the next apply did not converge (exit %d):\n%s", code, out)
	}
	if code, out := ccExitCode(ctx, t, ws, "plan", "-no-color", "-detailed-exitcode"); code != 0 {
		t.Errorf("plan after converging: exit %d\n%s", code, out)
	}
	state = ccStateContainers(ctx, t, ws)
	onEngines := ccOnEngines(ctx, t, set, pool, set.Names()...)
	if untracked := ccUntracked(onEngines, state); len(untracked) > 0 || len(state) != 30 {
		t.Errorf("after converging: %d in state, untracked %v", len(state), untracked)
	}
}
