package provider

import (
	"context"
	"strings"
	"testing"
	"time"
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
