package provider

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/internal/testenv"
)

// create_before_destroy on berth_container, with the real CLI, in both
// modes: the replacement takes the name while the old container still
// runs (replacements.go in scheduler/backend). Host ports 64300-64599.

// retagTestImage tags the test image as tag on every engine, for a change
// of image that needs no registry; the tag is removed at the end.
func retagTestImage(ctx context.Context, t *testing.T, env *testenv.Env, set *engine.Set, tag string) {
	t.Helper()
	for _, e := range set.Names() {
		docker := lcDocker(t, env, e)
		if err := docker.ImageTag(ctx, env.Image, tag); err != nil {
			t.Fatalf("tagging the test image on %s: %v", e, err)
		}
		t.Cleanup(func() { _, _ = docker.ImageRemove(context.Background(), tag, image.RemoveOptions{Force: true}) })
	}
}

// cbdHosts gives every test engine 50 ports from base.
func cbdHosts(env *testenv.Env, base int) []accPoolHost {
	hosts := accHosts(env, 1, "512MiB", 0)
	for i := range hosts {
		hosts[i].PortMin, hosts[i].PortCount = base+50*i, 50
	}
	return hosts
}

// cbdContainer renders the container under test, named web.
func cbdContainer(pool, image string) string {
	return fmt.Sprintf(`resource "berth_container" "web" {
  pool   = %q
  name   = "web"
  image  = %q
  cpu    = 0.25
  memory = "32MiB"
  ports  = [{ internal = 8080 }]
  lifecycle { create_before_destroy = true }
}
`, pool, image)
}

// cbdReplace applies the container, then replaces it by changing its
// image, with create_before_destroy: the apply succeeds, one container of
// the name runs afterwards, with the new image, and a new plan is empty. A
// replacement whose create fails after the old container was retired
// leaves that container in state, and the next apply replaces it. A second
// workspace declaring the same pool and name is refused. retiresFirst:
// the failing create retires the old container before it fails (embedded
// mode, where the apply's re-plan takes the name; berthd takes it in the
// create, after the image is resolved). checkLedger, when set, checks the
// backend's books against the engines after each step.
func cbdReplace(ctx context.Context, t *testing.T, env *testenv.Env, set *engine.Set, provider, pool string, ws, second *cliWorkspace,
	retiresFirst bool, checkLedger func(map[string][]engine.Container)) {
	t.Helper()
	config := func(image string) string { return provider + cbdContainer(pool, image) }
	// only returns the one container of the pool.
	only := func(step string) engine.Container {
		t.Helper()
		onEngines := ccOnEngines(ctx, t, set, pool, set.Names()...)
		if checkLedger != nil {
			checkLedger(onEngines)
		}
		for _, cs := range onEngines {
			if len(cs) == 1 && lcCount(onEngines) == 1 {
				return cs[0]
			}
		}
		t.Fatalf("%s: want one container on the engines, have %v", step, rmByName(onEngines))
		return engine.Container{}
	}
	empty := func(step string) {
		t.Helper()
		if code, out := ccExitCode(ctx, t, ws, "plan", "-detailed-exitcode", "-no-color"); code != 0 {
			t.Errorf("%s: plan exited %d, want 0 (no changes):\n%s", step, code, out)
		}
	}
	apply := func(step string) {
		t.Helper()
		if out, err := ws.run(ctx, "apply", "-auto-approve", "-no-color"); err != nil {
			t.Fatalf("%s: %v\n%s", step, err, out)
		}
	}
	ws.write(config(env.Image))
	apply("apply")
	first := only("create")

	retagged := "berth-test/app:" + pool
	retagTestImage(ctx, t, env, set, retagged)
	ws.write(config(retagged))
	if out, err := ws.run(ctx, "plan", "-out=tfplan", "-no-color"); err != nil || !strings.Contains(out, "create replacement and then destroy") {
		t.Fatalf("plan of the image change: %v, want a create-before-destroy replacement\n%s", err, out)
	}
	if out, err := ws.run(ctx, "apply", "-no-color", "tfplan"); err != nil {
		t.Fatalf("apply of the create_before_destroy replacement: %v\n%s", err, out)
	}
	replaced := only("replacement")
	if replaced.ID == first.ID || replaced.Image != retagged || !replaced.Running || replaced.Retired {
		t.Errorf("after the replacement: %s (%s, image %s, %s, retired %v), want a new running container of %s under its own name",
			replaced.Name, shortID(replaced.ID), replaced.Image, replaced.State, replaced.Retired, retagged)
	}
	empty("after the replacement")

	// The replacement fails after the old container gave up its name: the
	// old one stays in state (and running), and the next apply replaces it.
	ws.write(config("berth-test/does-not-exist:" + pool))
	if out, err := ws.run(ctx, "apply", "-auto-approve", "-no-color"); err == nil {
		t.Fatalf("apply of a missing image succeeded:\n%s", out)
	}
	if kept := only("failed replacement"); kept.ID != replaced.ID || !kept.Running || kept.Retired != retiresFirst {
		t.Errorf("after the failed replacement: %s (%s, retired %v), want %s kept running (retired %v)",
			shortID(kept.ID), kept.State, kept.Retired, shortID(replaced.ID), retiresFirst)
	}
	ws.write(config(env.Image))
	apply("apply after the failed replacement")
	again := only("replacement after the failure")
	if again.ID == replaced.ID || again.Image != env.Image || again.Retired {
		t.Errorf("after the second replacement: %s (image %s, retired %v), want a new container of %s under its own name",
			shortID(again.ID), again.Image, again.Retired, env.Image)
	}
	if state := ccStateContainers(ctx, t, ws); len(state) != 1 || !strings.HasPrefix(state[again.ID], "web@") {
		t.Errorf("state after the second replacement: %v, want only %s", state, shortID(again.ID))
	}
	empty("after the second replacement")

	second.write(provider + strings.ReplaceAll(cbdContainer(pool, env.Image), `"web" {`, `"twin" {`))
	if out, err := second.run(ctx, "apply", "-auto-approve", "-no-color"); err == nil || !strings.Contains(out, "already has a container named web") {
		t.Errorf("a second workspace's web: %v, want refused because the name is taken\n%s", err, out)
	}
	if kept := only("second workspace"); kept.ID != again.ID {
		t.Errorf("after the second workspace's apply: %s, want %s alone", shortID(kept.ID), shortID(again.ID))
	}
	if out, err := ws.run(ctx, "destroy", "-auto-approve", "-no-color"); err != nil {
		t.Fatalf("destroy: %v\n%s", err, out)
	}
}

func TestAccContainerCreateBeforeDestroy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	env := accEnv(t)
	set := accEngines(t, env)
	const pool = "pcbd-emb"
	cleanupPool(t, set, pool)
	bin := buildProvider(t, env)
	owner := newCLIWorkspaceWith(t, env, bin, env.ProviderHCL()+accPool(pool, "spread", cbdHosts(env, 64300)))
	t.Cleanup(func() { _, _ = owner.run(context.Background(), "destroy", "-auto-approve", "-no-color") })
	if out, err := owner.run(ctx, "apply", "-auto-approve", "-no-color"); err != nil {
		t.Fatalf("applying the pool: %v\n%s", err, out)
	}
	ws := newCLIWorkspaceWith(t, env, bin, "")
	t.Cleanup(func() { _, _ = ws.run(context.Background(), "destroy", "-auto-approve", "-no-color") })
	cbdReplace(ctx, t, env, set, env.ProviderHCL(), pool, ws, newCLIWorkspaceWith(t, env, bin, ""), true, nil)
}

func TestAccBerthdCreateBeforeDestroy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	env := accEnv(t)
	const pool = "pcbd-rem"
	b, set := rmSetup(ctx, t, pool, 64599, cbdHosts(env, 64450))
	provider := remoteProviderHCL(b.url(), b.token, "30m")
	bin := buildProvider(t, env)
	ws := newCLIWorkspaceWith(t, env, bin, "")
	t.Cleanup(func() { _, _ = ws.run(context.Background(), "destroy", "-auto-approve", "-no-color") })
	cbdReplace(ctx, t, env, set, provider, pool, ws, newCLIWorkspaceWith(t, env, bin, ""), false,
		func(onEngines map[string][]engine.Container) { rmCheckLedger(ctx, t, b, pool, onEngines) })
	rmCheckLedger(ctx, t, b, pool, nil)
}
