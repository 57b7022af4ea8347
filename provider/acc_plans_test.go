package provider

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
)

// Plan acceptance tests: what a plan shows (or must not show) against real
// engines. Pools are named pp-*; host ports stay within 59000-60499.

// ppPool renders a pool over the first two test engines, node1 with
// `labels = {}` and node2 without labels, each with its own port range.
func ppPool(name string, node1, node2 string, portBase int) string {
	return fmt.Sprintf(`resource "berth_pool" %[1]q {
  name = %[1]q
  hosts = {
    %[2]s = { labels = {}, cpu = 1, memory = "512MiB", port_range = "%[4]d-%[5]d" }
    %[3]s = { cpu = 1, memory = "512MiB", port_range = "%[6]d-%[7]d" }
  }
}
`, name, node1, node2, portBase, portBase+99, portBase+100, portBase+199)
}

// Empty labels, an empty env and retries = 0 mean the same as leaving them
// out, so neither an apply nor an import leaves a plan that never settles.
func TestAccNoPerpetualDiffs(t *testing.T) {
	t.Parallel()
	env := accEnv(t)
	set := accEngines(t, env)
	node1, node2 := env.Engines[0].Name, env.Engines[1].Name

	t.Run("labels = {} after apply", func(t *testing.T) {
		const pool = "pp-labels"
		cleanupPool(t, set, pool)
		// The test framework plans again after every apply and fails on any change.
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: accFactories(),
			Steps: []resource.TestStep{
				{Config: env.ProviderHCL() + ppPool(pool, node1, node2, 59000)},
				{
					Config:   env.ProviderHCL() + ppPool(pool, node1, node2, 59000),
					PlanOnly: true,
				},
			},
		})
	})

	t.Run("after import", func(t *testing.T) {
		const pool = "pp-import"
		cleanupPool(t, set, pool)
		ctx := context.Background()
		made := func() {
			// Another workspace made the pool and the container.
			rec := engine.PoolRecord{Name: pool, Strategy: "spread", Revision: time.Now().UnixNano(), Hosts: map[string]engine.PoolRecordHost{
				node1: {Labels: map[string]string{}, MilliCPU: 1000, MemoryBytes: 512 << 20, PortMin: 59200, PortMax: 59299},
				node2: {MilliCPU: 1000, MemoryBytes: 512 << 20, PortMin: 59300, PortMax: 59399},
			}}
			for _, host := range []string{node1, node2} {
				eng, err := set.Get(host)
				if err != nil {
					t.Fatal(err)
				}
				info, err := eng.Info(ctx)
				if err != nil {
					t.Fatal(err)
				}
				h := rec.Hosts[host]
				h.Discovered = info
				rec.Hosts[host] = h
			}
			for _, host := range []string{node1, node2} {
				eng, _ := set.Get(host)
				if err := eng.WritePoolRecord(ctx, rec); err != nil {
					t.Fatal(err)
				}
			}
			eng, _ := set.Get(node1)
			id, err := eng.CreateContainer(ctx, engine.ContainerSpec{
				Pool: pool, Name: "web", ReservationID: "r-made-elsewhere", Image: env.Image,
				MilliCPU: 100, MemoryBytes: 32 << 20, Restart: "unless-stopped",
				Healthcheck: &engine.Healthcheck{Test: []string{"CMD", "/app", "healthcheck"}, Interval: time.Second},
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := eng.StartContainer(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		container := func(attrs ...string) string {
			return lcContainer("web", pool, "web", env.Image, append([]string{`cpu = 0.1`, `memory = "32MiB"`}, attrs...)...)
		}
		withEmpty := env.ProviderHCL() + ppPool(pool, node1, node2, 59200) +
			container(`env = {}`, `healthcheck = { test = ["CMD", "/app", "healthcheck"], interval = "1s", retries = 0 }`)
		withoutEmpty := env.ProviderHCL() + ppPool(pool, node1, node2, 59200) +
			container(`healthcheck = { test = ["CMD", "/app", "healthcheck"], interval = "1s" }`)
		empty := resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: accFactories(),
			Steps: []resource.TestStep{
				{
					PreConfig:          made,
					Config:             withEmpty,
					ResourceName:       "berth_pool." + pool,
					ImportState:        true,
					ImportStateId:      pool,
					ImportStatePersist: true,
				},
				{
					Config:             withEmpty,
					ResourceName:       "berth_container.web",
					ImportState:        true,
					ImportStateId:      pool + "/web",
					ImportStatePersist: true,
				},
				{Config: withEmpty, ConfigPlanChecks: empty},
				{Config: withoutEmpty, ConfigPlanChecks: empty},
			},
		})
	})
}

// A resize planned in place that no longer fits when the saved plan is
// applied (another workspace took the room in between) fails with the
// reason: the action chosen at plan never changes at apply.
func TestAccResizeThatNoLongerFitsAtApply(t *testing.T) {
	t.Parallel()
	env := accEnv(t)
	set := accEngines(t, env)
	const pool = "pp-resize"
	cleanupPool(t, set, pool)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	node1 := env.Engines[0].Name
	config := func(memory string) string {
		return env.ProviderHCL() +
			accPool(pool, "spread", []accPoolHost{{Engine: node1, CPU: 1, Memory: "256MiB", PortMin: 59400}}) +
			lcContainer("web", pool, "web", env.Image, `cpu = 0.1`, `memory = "`+memory+`"`)
	}
	ws := newCLIWorkspace(t, env, config("32MiB"))
	t.Cleanup(func() { _, _ = ws.run(context.Background(), "destroy", "-auto-approve", "-refresh=false", "-no-color") })
	if out, err := ws.run(ctx, "apply", "-auto-approve", "-no-color"); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	ws.write(config("128MiB"))
	out, err := ws.run(ctx, "plan", "-out=resize.tfplan", "-no-color")
	if err != nil || !diagnostic(`berth_container.web will be updated in-place`).MatchString(out) {
		t.Fatalf("plan of a resize that fits is not an in-place update: %v\n%s", err, out)
	}
	// Another workspace takes 160MiB of node1's 256MiB: 32 + 160 fit, 128 + 160 do not.
	eng, err := set.Get(node1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.CreateContainer(ctx, engine.ContainerSpec{
		Pool: pool, Name: "other-workspace", ReservationID: "r-other", Image: env.Image,
		MilliCPU: 100, MemoryBytes: 160 << 20, Restart: "no",
	}); err != nil {
		t.Fatal(err)
	}
	out, err = ws.run(ctx, "apply", "-no-color", "resize.tfplan")
	if err == nil {
		t.Fatalf("apply of a resize that no longer fits succeeded:\n%s", out)
	}
	if diagnostic(`inconsistent final plan`).MatchString(out) {
		t.Errorf("the apply changed the planned action:\n%s", out)
	}
	if !diagnostic(`cannot be resized in place any more...no longer fits on host "node1"...memory`).MatchString(out) {
		t.Errorf("the apply does not say why the resize failed:\n%s", out)
	}
	if _, c, err := lcWeb(ctx, set, pool); err != nil || c == nil || c.MemoryBytes != 32<<20 {
		t.Errorf("web after the failed resize: %+v, %v; want it unchanged at 32MiB", c, err)
	}
}

// ppHost renders one member of a pool for TestAccDeadEngine.
func ppHost(name string, portMin int, extra string) string {
	return fmt.Sprintf("    %s = { cpu = 1, memory = \"256MiB\", port_range = \"%d-%d\" %s }\n", name, portMin, portMin+99, extra)
}

// ppDeadPool is TestAccDeadEngine's pool.
const ppDeadPool = "pp-dead"

// ppWhere returns the engine ppDeadPool's container named name runs on,
// and its id; "" when none of the engines has it.
func ppWhere(ctx context.Context, t *testing.T, set *engine.Set, name string, engines ...string) (string, string) {
	t.Helper()
	for _, host := range engines {
		eng, err := set.Get(host)
		if err != nil {
			t.Fatal(err)
		}
		listed, err := eng.ListContainers(ctx, ppDeadPool)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range listed {
			if c.Name == name {
				return host, c.ID
			}
		}
	}
	return "", ""
}

// A cordoned host keeps what runs and takes nothing new; a dead engine
// does not hold the workspace hostage: an unchanged plan passes with a
// warning naming the host, the host can be written off (lost = true), its
// containers are re-created elsewhere, and it can then leave the pool.
func TestAccDeadEngine(t *testing.T) { // not parallel: stops a shared engine
	env := accEnv(t)
	set := accEngines(t, env)
	const pool = ppDeadPool
	node1, node2, node3 := env.Engines[0].Name, env.Engines[1].Name, env.Engines[2].Name
	cleanupPool(t, set, pool)
	// Registered after cleanupPool, so it runs first: the cleanup needs the engine.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := env.StartEngine(ctx, node2); err != nil {
			t.Errorf("restarting %s: %v", node2, err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	config := func(node2Extra, node3Extra string, more ...string) string {
		hosts := ppHost(node1, 59500, "") + ppHost(node3, 59700, node3Extra)
		if node2Extra != "gone" {
			hosts += ppHost(node2, 59600, node2Extra)
		}
		return env.ProviderHCL() + fmt.Sprintf("resource \"berth_pool\" %q {\n  name = %q\n  hosts = {\n%s  }\n}\n", pool, pool, hosts) +
			lcContainer("a", pool, "a", env.Image, `cpu = 0.1`, `memory = "32MiB"`, `host = "node3"`) +
			lcContainer("b", pool, "b", env.Image, `cpu = 0.1`, `memory = "32MiB"`, `constraints = ["~node.name == node2"]`) +
			strings.Join(more, "")
	}
	ws := newCLIWorkspace(t, env, config("", ""))
	t.Cleanup(func() { _, _ = ws.run(context.Background(), "destroy", "-auto-approve", "-refresh=false", "-no-color") })
	mustApply := func(what string) string {
		t.Helper()
		out, err := ws.run(ctx, "apply", "-auto-approve", "-no-color")
		if err != nil {
			t.Fatalf("%s: %v\n%s", what, err, out)
		}
		return out
	}
	mustApply("first apply")
	if host, _ := ppWhere(ctx, t, set, "b", node1, node2, node3); host != node2 {
		t.Fatalf("b is on %q, want node2, which it prefers", host)
	}
	_, aID := ppWhere(ctx, t, set, "a", node3)

	// Cordoned node3: a stays, nothing new may go there.
	cordoned := `, schedulable = false`
	ws.write(config("", cordoned, lcContainer("c", pool, "c", env.Image, `cpu = 0.1`, `memory = "32MiB"`, `host = "node3"`)))
	if out, err := ws.run(ctx, "plan", "-no-color"); err == nil || !diagnostic(`no host fits c...node3: cordoned`).MatchString(out) {
		t.Errorf("a container pinned to a cordoned host planned, or without the reason: %v\n%s", err, out)
	}
	ws.write(config("", cordoned))
	mustApply("cordoning node3")
	if _, id := ppWhere(ctx, t, set, "a", node3); id != aID {
		t.Errorf("a is %q on node3 after the cordon, want the same container %s", id, aID)
	}

	// node2 dies: the unchanged workspace still plans, and says why b is not refreshed.
	if err := env.StopEngine(ctx, node2); err != nil {
		t.Fatal(err)
	}
	code, out := ccExitCode(ctx, t, ws, "plan", "-detailed-exitcode", "-no-color")
	if code != 0 {
		t.Errorf("plan of the unchanged workspace with node2 down: exit %d, want 0 (no changes)\n%s", code, out)
	}
	if !diagnostic(`Warning: Container pp-dead/b kept as last known: host node2 does not answer...lost = true`).MatchString(out) {
		t.Errorf("the plan does not warn about b on node2:\n%s", out)
	}

	// Written off: b is forgotten and re-created on node1 (node3 is cordoned).
	ws.write(config(`, lost = true`, cordoned))
	mustApply("writing node2 off")
	out = mustApply("re-creating what node2 ran")
	if !diagnostic(`1 added, 0 changed, 0 destroyed`).MatchString(out) {
		t.Errorf("the apply after writing node2 off did not re-create b:\n%s", out)
	}
	if host, _ := ppWhere(ctx, t, set, "b", node1, node3); host != node1 {
		t.Errorf("b is on %q after node2 was written off, want node1", host)
	}

	// And node2 leaves the pool, though it still does not answer.
	ws.write(config("gone", cordoned))
	mustApply("removing node2")
	if code, out := ccExitCode(ctx, t, ws, "plan", "-detailed-exitcode", "-no-color"); code != 0 {
		t.Errorf("plan after removing node2: exit %d, want 0\n%s", code, out)
	}
}

// Destroying a and creating b in one plan: b fits in the room a frees,
// at plan and at apply.
func TestAccDestroyAndCreateInOnePlan(t *testing.T) {
	t.Parallel()
	env := accEnv(t)
	set := accEngines(t, env)
	const pool = "pp-swap"
	cleanupPool(t, set, pool)
	node1 := env.Engines[0].Name
	poolHCL := env.ProviderHCL() + accPool(pool, "spread", []accPoolHost{{Engine: node1, CPU: 1, Memory: "128MiB", PortMin: 59800}})
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: accFactories(),
		Steps: []resource.TestStep{
			{Config: poolHCL + lcContainer("a", pool, "a", env.Image, `cpu = 0.1`, `memory = "96MiB"`)},
			{
				Config: poolHCL + lcContainer("b", pool, "b", env.Image, `cpu = 0.1`, `memory = "96MiB"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("berth_container.a", plancheck.ResourceActionDestroy),
					plancheck.ExpectResourceAction("berth_container.b", plancheck.ResourceActionCreate),
				}},
			},
		},
	})
}
