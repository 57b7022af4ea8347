package provider

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/internal/testenv"
)

// Lifecycle acceptance tests: drift, import, in-place resize, destroy
// without refresh and bad input, against the real provider and engines.
// Pools are named pb-*; host ports stay within 49000-50999 here (the
// concurrency tests use 51000-52999).

// lcContainer renders a berth_container in the pool declared by accPool.
func lcContainer(address, pool, name, image string, attrs ...string) string {
	return fmt.Sprintf("resource \"berth_container\" %q {\n  pool  = berth_pool.%s.id\n  name  = %q\n  image = %q\n  %s\n}\n",
		address, pool, name, image, strings.Join(attrs, "\n  "))
}

// lcAttr reads one attribute of a resource from Terraform state.
func lcAttr(s *terraform.State, address, attr string) (string, error) {
	rs, ok := s.RootModule().Resources[address]
	if !ok {
		return "", fmt.Errorf("%s is not in state", address)
	}
	return rs.Primary.Attributes[attr], nil
}

// lcWeb looks the pool's container named web up on the engines; nil when
// no engine has it.
func lcWeb(ctx context.Context, set *engine.Set, pool string) (host string, c *engine.Container, err error) {
	byHost, err := poolContainers(ctx, set, pool)
	if err != nil {
		return "", nil, err
	}
	for h, listed := range byHost {
		for _, listedC := range listed {
			if listedC.Name != "web" {
				continue
			}
			eng, err := set.Get(h)
			if err != nil {
				return "", nil, err
			}
			inspected, err := eng.InspectContainer(ctx, listedC.ID)
			return h, inspected, err
		}
	}
	return "", nil, nil
}

// lcDocker is a raw Docker client of one test engine, for changes Berth
// itself never makes (stopping a container out of band).
func lcDocker(t *testing.T, env *testenv.Env, name string) *client.Client {
	t.Helper()
	e, ok := env.Engine(name)
	if !ok {
		t.Fatalf("no engine %s", name)
	}
	cli, err := client.NewClientWithOpts(client.WithHost(e.Socket), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// lcExpectChange checks that the plan moves one attribute from before to
// after (e.g. running false -> true).
type lcExpectChange struct {
	address, attr string
	before, after any
}

func (c lcExpectChange) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	for _, rc := range req.Plan.ResourceChanges {
		if rc.Address != c.address {
			continue
		}
		before, _ := rc.Change.Before.(map[string]any)
		after, _ := rc.Change.After.(map[string]any)
		if !reflect.DeepEqual(before[c.attr], c.before) || !reflect.DeepEqual(after[c.attr], c.after) {
			resp.Error = fmt.Errorf("%s.%s: planned %v -> %v, want %v -> %v", c.address, c.attr, before[c.attr], after[c.attr], c.before, c.after)
		}
		return
	}
	resp.Error = fmt.Errorf("%s has no planned change", c.address)
}

// A container removed out of band is re-created; one stopped out of band
// is started in place (same container).
func TestAccContainerDrift(t *testing.T) {
	t.Parallel()
	env := accEnv(t)
	set := accEngines(t, env)
	const pool = "pb-drift"
	cleanupPool(t, set, pool)
	ctx := context.Background()
	address := "berth_container.web"
	config := env.ProviderHCL() + accPool(pool, "spread", accHosts(env, 1, "512MiB", 49000)) +
		lcContainer("web", pool, "web", env.Image, `cpu = 0.1`, `memory = "32MiB"`, `ports = [{ internal = 8080 }]`)
	stopped := env.ProviderHCL() + accPool(pool, "spread", accHosts(env, 1, "512MiB", 49000)) +
		lcContainer("web", pool, "web", env.Image, `cpu = 0.1`, `memory = "32MiB"`, `ports = [{ internal = 8080 }]`, `running = false`)
	var firstID string
	sameContainer := func(s *terraform.State) error {
		if id, _ := lcAttr(s, address, "container_id"); id != firstID {
			return fmt.Errorf("container_id changed from %s to %s: stopping and starting keep the container", firstID, id)
		}
		return nil
	}
	onEngine := func(wantRunning bool) resource.TestCheckFunc {
		return func(s *terraform.State) error {
			id, err := lcAttr(s, address, "container_id")
			if err != nil {
				return err
			}
			host, c, err := lcWeb(ctx, set, pool)
			switch {
			case err != nil:
				return err
			case c == nil:
				return errors.New("web is on no engine")
			case c.ID != id:
				return fmt.Errorf("engine %s has web as %s, state says %s", host, c.ID, id)
			case c.Running != wantRunning || (wantRunning && c.State != "running"):
				return fmt.Errorf("web on %s is %s, want running = %v", host, c.State, wantRunning)
			}
			return nil
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: accFactories(),
		Steps: []resource.TestStep{
			{
				Config: config,
				Check: resource.ComposeTestCheckFunc(onEngine(true), func(s *terraform.State) (err error) {
					firstID, err = lcAttr(s, address, "container_id")
					return err
				}),
			},
			{
				// Removed out of band: refresh drops it, the plan creates it again.
				PreConfig: func() {
					host, c, err := lcWeb(ctx, set, pool)
					if err != nil || c == nil {
						t.Fatalf("finding web: %v", err)
					}
					eng, _ := set.Get(host)
					if err := eng.Remove(ctx, c.ID); err != nil {
						t.Fatal(err)
					}
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(address, plancheck.ResourceActionCreate),
				}},
				Check: resource.ComposeTestCheckFunc(onEngine(true), func(s *terraform.State) error {
					id, err := lcAttr(s, address, "container_id")
					if err == nil && id == firstID {
						err = fmt.Errorf("container_id %s is the removed container's", id)
					}
					firstID = id
					return err
				}),
			},
			{
				// Stopped out of band: the plan starts it in place.
				PreConfig: func() {
					host, c, err := lcWeb(ctx, set, pool)
					if err != nil || c == nil {
						t.Fatalf("finding web: %v", err)
					}
					timeout := 1
					if err := lcDocker(t, env, host).ContainerStop(ctx, c.ID, container.StopOptions{Timeout: &timeout}); err != nil {
						t.Fatal(err)
					}
					if _, c, _ := lcWeb(ctx, set, pool); c == nil || c.Running {
						t.Fatalf("web still runs after docker stop: %+v", c)
					}
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(address, plancheck.ResourceActionUpdate),
					lcExpectChange{address: address, attr: "running", before: false, after: true},
				}},
				Check: resource.ComposeTestCheckFunc(onEngine(true), sameContainer),
			},
			{
				// running = false stops it in place; the next plan is empty.
				Config: stopped,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(address, plancheck.ResourceActionUpdate),
						lcExpectChange{address: address, attr: "running", before: true, after: false},
					},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeTestCheckFunc(onEngine(false), sameContainer),
			},
			{
				// And running = true (the default) starts it again.
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(address, plancheck.ResourceActionUpdate),
					lcExpectChange{address: address, attr: "running", before: false, after: true},
				}},
				Check: resource.ComposeTestCheckFunc(onEngine(true), sameContainer),
			},
		},
	})
}

// Import rebuilds the whole state from the engines.
func TestAccContainerImport(t *testing.T) {
	t.Parallel()
	env := accEnv(t)
	set := accEngines(t, env)
	const pool = "pb-import"
	cleanupPool(t, set, pool)
	config := env.ProviderHCL() + accPool(pool, "spread", accHosts(env, 1, "512MiB", 49300)) +
		lcContainer("web", pool, "web", env.Image,
			`cpu          = 0.2`,
			`memory       = "48MiB"`,
			`command      = ["/app"]`,
			`env          = { MESSAGE = "imported", PORT = "8080" }`,
			`ports        = [{ internal = 8080, external = 0 }]`,
			`constraints  = ["node.name != nowhere", "~zone == a"]`,
			`spread_group = "web"`,
			`max_per_host = 2`,
			`restart      = "always"`,
			`healthcheck  = { test = ["CMD", "/app", "healthcheck"], interval = "1s", retries = 3 }`,
			`stop_timeout = "3s"`,
			`registry_auth = { server_address = "registry.invalid", username = "u", password = "p" }`,
			`timeouts { create = "2m" }`,
		)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: accFactories(),
		Steps: []resource.TestStep{
			{Config: config},
			{
				Config:            config,
				ResourceName:      "berth_container.web",
				ImportState:       true,
				ImportStateId:     pool + "/web",
				ImportStateVerify: true,
				ImportStateVerifyIgnore: []string{
					// Configuration of the provider's own operations, never
					// written to the engine.
					"timeouts",
					// Credentials are used for pulls only and never stored
					// on the engine (nor should they be).
					"registry_auth",
					// external = 0 means "any port"; the engine records only
					// the port picked, which import puts in ports (and which
					// plans no change against external = 0).
					"ports.0.external",
				},
			},
			{
				Config:        config,
				ResourceName:  "berth_container.web",
				ImportState:   true,
				ImportStateId: pool + "/missing",
				ExpectError:   diagnostic(`Container not found...No Berth container named "missing" in pool "pb-import"`),
			},
			{
				Config:        config,
				ResourceName:  "berth_container.web",
				ImportState:   true,
				ImportStateId: "pb-nosuchpool/web",
				ExpectError:   diagnostic(`pool "pb-nosuchpool" not found on any engine`),
			},
			{
				Config:            config,
				ResourceName:      "berth_pool." + pool,
				ImportState:       true,
				ImportStateId:     pool,
				ImportStateVerify: true,
			},
		},
	})
}

// Memory grows in place while the host fits it (same container, new limit
// on the engine), and a size the host cannot take replaces the container
// onto a host that can.
func TestAccContainerMemoryResize(t *testing.T) {
	t.Parallel()
	env := accEnv(t)
	set := accEngines(t, env)
	const pool = "pb-resize"
	cleanupPool(t, set, pool)
	ctx := context.Background()
	address := "berth_container.web"
	// web prefers node1 (soft), filler is pinned there: node1 holds both
	// until web asks for more than node1's 128MiB leaves it.
	config := func(memory string) string {
		return env.ProviderHCL() + accPool(pool, "spread", accHosts(env, 1, "128MiB", 49600)) +
			lcContainer("web", pool, "web", env.Image, `cpu = 0.1`, `memory = "`+memory+`"`, `constraints = ["~node.name == node1"]`) +
			lcContainer("filler", pool, "filler", env.Image, `cpu = 0.1`, `memory = "64MiB"`, `host = "node1"`)
	}
	var id string
	limitOnEngine := func(wantHost string, wantBytes int64, sameID bool) resource.TestCheckFunc {
		return func(s *terraform.State) error {
			stateID, err := lcAttr(s, address, "container_id")
			if err != nil {
				return err
			}
			if sameID != (stateID == id) {
				return fmt.Errorf("container_id went from %s to %s (same container wanted: %t)", id, stateID, sameID)
			}
			id = stateID
			host, c, err := lcWeb(ctx, set, pool)
			switch {
			case err != nil:
				return err
			case c == nil || c.ID != stateID:
				return fmt.Errorf("web on the engines is %+v, state says %s", c, stateID)
			case c.MemoryBytes != wantBytes:
				return fmt.Errorf("web's memory limit on %s is %d, want %d", host, c.MemoryBytes, wantBytes)
			case (wantHost == "node1") != (host == "node1"):
				return fmt.Errorf("web is on %s", host)
			case !c.Running:
				return fmt.Errorf("web on %s is %s", host, c.State)
			}
			if got, _ := lcAttr(s, address, "host"); got != host {
				return fmt.Errorf("state says host %s, the engines %s", got, host)
			}
			return nil
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: accFactories(),
		Steps: []resource.TestStep{
			{
				Config: config("32MiB"),
				Check: resource.ComposeTestCheckFunc(func(s *terraform.State) (err error) {
					id, err = lcAttr(s, address, "container_id")
					return err
				}, limitOnEngine("node1", 32<<20, true)),
			},
			{
				Config: config("48MiB"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(address, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(address, tfjsonpath.New("host"), knownvalue.StringExact("node1")),
				}},
				Check: limitOnEngine("node1", 48<<20, true),
			},
			{
				// 64MiB + 96MiB > 128MiB: node1 cannot resize it in place.
				Config: config("96MiB"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(address, plancheck.ResourceActionDestroyBeforeCreate),
					plancheck.ExpectResourceAction("berth_container.filler", plancheck.ResourceActionNoop),
				}},
				Check: limitOnEngine("elsewhere", 96<<20, false),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(address, tfjsonpath.New("memory"), knownvalue.StringExact("96MiB")),
				},
			},
		},
	})
}

// The resize that does not fit its host says so in the plan, through the
// real CLI (terraform-plugin-testing does not expose warnings).
func TestAccContainerResizeReplacementWarns(t *testing.T) {
	t.Parallel()
	env := accEnv(t)
	set := accEngines(t, env)
	const pool = "pb-resizewarn"
	cleanupPool(t, set, pool)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	config := func(memory, placement string) string {
		return env.ProviderHCL() + accPool(pool, "spread", accHosts(env, 1, "128MiB", 49700)) +
			lcContainer("web", pool, "web", env.Image, `cpu = 0.1`, `memory = "`+memory+`"`, placement) +
			lcContainer("filler", pool, "filler", env.Image, `cpu = 0.1`, `memory = "64MiB"`, `host = "node1"`)
	}
	prefer := `constraints = ["~node.name == node1"]`
	ws := newCLIWorkspace(t, env, config("32MiB", prefer))
	t.Cleanup(func() { _, _ = ws.run(context.Background(), "destroy", "-auto-approve", "-refresh=false", "-no-color") })
	if out, err := ws.run(ctx, "apply", "-auto-approve", "-no-color"); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	warning := []string{
		`Warning: Container pb-resizewarn/web will be replaced to resize it`,
		`does not fit on host "node1": cannot resize web ...node1: memory 64MiB free`,
	}
	expect := func(out string, want []string) {
		t.Helper()
		for _, w := range want {
			if !diagnostic(w).MatchString(out) {
				t.Errorf("plan output lacks %q:\n%s", w, out)
			}
		}
	}

	if host, c, err := lcWeb(ctx, set, pool); err != nil || c == nil || host != "node1" {
		t.Fatalf("web is not on node1, which it prefers: %q %+v %v", host, c, err)
	}

	// Unpinned (node1 only preferred), it is replaced where it fits.
	ws.write(config("96MiB", prefer))
	out, err := ws.run(ctx, "plan", "-no-color")
	if err != nil {
		t.Fatalf("plan: %v\n%s", err, out)
	}
	expect(out, append(warning, `berth_container.web must be replaced`, `Plan: 1 to add, 0 to change, 1 to destroy`))

	// Pinned to node1, it can neither resize in place nor move: the plan
	// warns why it would replace, then fails to fit the create.
	ws.write(config("96MiB", prefer+"\n  host = \"node1\""))
	out, err = ws.run(ctx, "plan", "-no-color")
	if err == nil {
		t.Fatalf("plan of a pinned container that cannot fit succeeded:\n%s", out)
	}
	expect(out, append(warning, `Error: Container pb-resizewarn/web does not fit`, `no host fits web`))

	_, c, err := lcWeb(ctx, set, pool)
	if err != nil || c == nil || c.MemoryBytes != 32<<20 {
		t.Errorf("plans changed web: %+v, %v", c, err)
	}
}

// terraform destroy -refresh=false works from state alone: containers and
// pool records are gone from every engine.
func TestAccDestroyWithoutRefresh(t *testing.T) {
	t.Parallel()
	env := accEnv(t)
	set := accEngines(t, env)
	const pool = "pb-norefresh"
	cleanupPool(t, set, pool)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	config := env.ProviderHCL() + accPool(pool, "spread", accHosts(env, 1, "512MiB", 50000))
	for i := range 4 {
		config += lcContainer(fmt.Sprintf("c%d", i), pool, fmt.Sprintf("c-%d", i), env.Image,
			`cpu = 0.1`, `memory = "16MiB"`, `ports = [{ internal = 8080 }]`)
	}
	ws := newCLIWorkspace(t, env, config)
	if out, err := ws.run(ctx, "apply", "-auto-approve", "-no-color"); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	byHost, err := poolContainers(ctx, set, pool)
	if err != nil {
		t.Fatal(err)
	}
	if n := lcCount(byHost); n != 4 {
		t.Fatalf("%d containers on the engines after apply, want 4: %v", n, byHost)
	}
	if missing := lcPoolRecordsMissing(ctx, t, set, pool); len(missing) > 0 {
		t.Fatalf("pool record missing on %v after apply", missing)
	}

	out, err := ws.run(ctx, "destroy", "-auto-approve", "-refresh=false", "-no-color")
	if err != nil {
		t.Fatalf("destroy -refresh=false: %v\n%s", err, out)
	}
	if !strings.Contains(out, "5 destroyed") {
		t.Errorf("destroy did not report 5 destroyed:\n%s", out)
	}
	byHost, err = poolContainers(ctx, set, pool)
	if err != nil {
		t.Fatal(err)
	}
	if n := lcCount(byHost); n != 0 {
		t.Errorf("%d containers left on the engines: %v", n, byHost)
	}
	if missing := lcPoolRecordsMissing(ctx, t, set, pool); len(missing) != len(set.Names()) {
		t.Errorf("pool records left on the engines: on all but %v", missing)
	}
}

func lcCount(byHost map[string][]engine.Container) int {
	n := 0
	for _, cs := range byHost {
		n += len(cs)
	}
	return n
}

// lcPoolRecordsMissing lists the engines that hold no record of the pool.
func lcPoolRecordsMissing(ctx context.Context, t *testing.T, set *engine.Set, pool string) []string {
	t.Helper()
	var missing []string
	for _, name := range set.Names() {
		eng, err := set.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := eng.ReadPoolRecord(ctx, pool)
		if err != nil {
			t.Fatal(err)
		}
		if rec == nil {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	return missing
}

// Bad input the real provider must catch, with the attribute named.
func TestAccBadInput(t *testing.T) {
	t.Parallel()
	env := accEnv(t)
	set := accEngines(t, env)
	const pool = "pb-badinput"
	cleanupPool(t, set, pool)
	poolHCL := accPool(pool, "spread", accHosts(env, 1, "512MiB", 50300))
	t.Run("pool host not an engine", func(t *testing.T) {
		hosts := append(accHosts(env, 1, "512MiB", 50300), accPoolHost{Engine: "node9", CPU: 1, Memory: "512MiB", PortMin: 50600})
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: accFactories(),
			Steps: []resource.TestStep{{
				Config:      env.ProviderHCL() + accPool("pb-badhost", "spread", hosts),
				PlanOnly:    true,
				ExpectError: diagnostic(`Unknown engine...with berth_pool.pb-badhost...node9 = \{...Host "node9" is not an engine of the provider block. Known engines: "node1", "node2", "node3"`),
			}},
		})
		if missing := lcPoolRecordsMissing(context.Background(), t, set, "pb-badhost"); len(missing) != len(set.Names()) {
			t.Errorf("a failed plan wrote pool records")
		}
	})
	t.Run("duplicate names, different settings", func(t *testing.T) {
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: accFactories(),
			Steps: []resource.TestStep{{
				Config: env.ProviderHCL() + poolHCL +
					lcContainer("a", pool, "web", env.Image, `cpu = 0.1`, `memory = "16MiB"`) +
					lcContainer("b", pool, "web", env.Image, `cpu = 0.1`, `memory = "32MiB"`),
				PlanOnly:    true,
				ExpectError: diagnostic(`Duplicate container name...with berth_container\.[ab]...name = "web"...pool pb-badinput: two resources declare a container named web, with different settings`),
			}},
		})
	})
	t.Run("duplicate names, same settings", func(t *testing.T) {
		// Identical twins look like one resource planned twice, so plan
		// passes; the second create is refused without harming the first.
		ctx := context.Background()
		twins := lcContainer("a", pool, "web", env.Image, `cpu = 0.1`, `memory = "16MiB"`) +
			lcContainer("b", pool, "web", env.Image, `cpu = 0.1`, `memory = "16MiB"`)
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: accFactories(),
			Steps: []resource.TestStep{
				{
					Config:      env.ProviderHCL() + poolHCL + twins,
					ExpectError: diagnostic(`Duplicate container name...with berth_container\.[ab]...name = "web"...pool pb-badinput...named web`),
				},
				{
					PreConfig: func() {
						host, c, err := lcWeb(ctx, set, pool)
						if err != nil || c == nil || !c.Running {
							t.Errorf("the first web is not running: %+v on %q, %v", c, host, err)
						}
						byHost, err := poolContainers(ctx, set, pool)
						if n := lcCount(byHost); err != nil || n != 1 {
							t.Errorf("%d containers after the failed apply, want 1: %v %v", n, byHost, err)
						}
					},
					Config: env.ProviderHCL() + poolHCL,
				},
			},
		})
		// The web that was made was in state: destroying it left nothing.
		byHost, err := poolContainers(ctx, set, pool)
		if err != nil {
			t.Fatal(err)
		}
		if n := lcCount(byHost); n != 0 {
			t.Errorf("%d containers left behind: %v", n, byHost)
		}
	})
}
