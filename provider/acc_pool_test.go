package provider

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/internal/testenv"
)

// Pool acceptance tests: the pool as a real object on its engines. Pools
// are named pl-*; no container here publishes a port.

// poolRecordOn reads the pool's record from one engine.
func poolRecordOn(ctx context.Context, set *engine.Set, host, pool string) (*engine.PoolRecord, error) {
	eng, err := set.Get(host)
	if err != nil {
		return nil, err
	}
	return eng.ReadPoolRecord(ctx, pool)
}

// checkRecords checks which engines hold the pool's record, and that each
// one describes exactly the members.
func checkRecords(set *engine.Set, pool string, members ...string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		ctx := context.Background()
		want := map[string]bool{}
		for _, m := range members {
			want[m] = true
		}
		for _, host := range set.Names() {
			rec, err := poolRecordOn(ctx, set, host, pool)
			if err != nil {
				return err
			}
			switch {
			case want[host] && rec == nil:
				return fmt.Errorf("member %s holds no record of pool %s", host, pool)
			case !want[host] && rec != nil:
				return fmt.Errorf("%s is not a member but holds a record of pool %s", host, pool)
			case rec != nil && len(rec.Hosts) != len(members):
				return fmt.Errorf("record on %s lists %d hosts, want %d", host, len(rec.Hosts), len(members))
			}
		}
		return nil
	}
}

// orphanOn creates a Berth container of the pool directly on an engine, as
// another workspace would, so that the pool is in use outside this state.
func orphanOn(t *testing.T, env *testenv.Env, set *engine.Set, host, pool string) {
	t.Helper()
	ctx := context.Background()
	eng, err := set.Get(host)
	if err != nil {
		t.Fatal(err)
	}
	_, err = eng.CreateContainer(ctx, engine.ContainerSpec{
		Pool: pool, Name: "other-workspace", ReservationID: "r-orphan", Image: env.Image,
		MilliCPU: 100, MemoryBytes: 16 << 20, Restart: "no",
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestAccPoolLifecycle(t *testing.T) {
	t.Parallel()
	env := accEnv(t)
	set := accEngines(t, env)
	const pool = "pl-life"
	cleanupPool(t, set, pool)
	node1, node2 := env.Engines[0].Name, env.Engines[1].Name
	address := "berth_pool." + pool
	two := []accPoolHost{
		{Engine: node1, Labels: map[string]string{"zone": "a"}, CPU: 1, Memory: "512MiB", PortMin: 44500},
		{Engine: node2, Labels: map[string]string{"zone": "b"}, CPU: 1, Memory: "512MiB", PortMin: 44600},
	}
	relabelled := []accPoolHost{two[0], two[1]}
	relabelled[1].Labels = map[string]string{"zone": "c"}
	relabelled[1].CPU = 2
	onlyNode1 := two[:1]

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: accFactories(),
		CheckDestroy:             checkRecords(set, pool),
		Steps: []resource.TestStep{
			{ // created: records on both members, discovery in state
				Config: env.ProviderHCL() + accPool(pool, "spread", two),
				Check: resource.ComposeAggregateTestCheckFunc(
					checkRecords(set, pool, node1, node2),
					resource.TestCheckResourceAttr(address, "id", pool),
					resource.TestCheckResourceAttrWith(address, "hosts."+node1+".discovered_cpus", positiveInt),
					resource.TestCheckResourceAttrWith(address, "hosts."+node2+".discovered_memory", positiveInt),
					resource.TestCheckResourceAttrSet(address, "hosts."+node1+".engine_version"),
					resource.TestCheckResourceAttrSet(address, "hosts."+node1+".api_version"),
				),
			},
			{ // relabelled and resized in place
				Config: env.ProviderHCL() + accPool(pool, "spread", relabelled),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(address, plancheck.ResourceActionUpdate),
				}},
				Check: func(*terraform.State) error {
					rec, err := poolRecordOn(context.Background(), set, node1, pool)
					if err != nil {
						return err
					}
					if got := rec.Hosts[node2]; got.Labels["zone"] != "c" || got.MilliCPU != 2000 {
						return fmt.Errorf("record on %s has %s as %+v, want zone c and 2000 millicores", node1, node2, got)
					}
					return nil
				},
			},
			{ // drift: the records vanish out of band, the plan puts them back
				PreConfig: func() {
					for _, host := range []string{node1, node2} {
						eng, err := set.Get(host)
						if err != nil {
							t.Fatal(err)
						}
						if err := eng.DeletePoolRecord(context.Background(), pool); err != nil {
							t.Fatal(err)
						}
					}
				},
				Config: env.ProviderHCL() + accPool(pool, "spread", relabelled),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(address, plancheck.ResourceActionCreate),
				}},
				Check: checkRecords(set, pool, node1, node2),
			},
			{ // a host still running a container of the pool cannot leave it
				PreConfig:   func() { orphanOn(t, env, set, node2, pool) },
				Config:      env.ProviderHCL() + accPool(pool, "spread", onlyNode1),
				ExpectError: diagnostic(`cannot remove host\(s\) ` + node2 + ` from pool "` + pool + `": it still has 1 container\(s\) or volume\(s\): other-workspace \(on ` + node2 + `\)`),
			},
			{ // nor can the pool be deleted while it has one
				Config:      env.ProviderHCL(),
				ExpectError: diagnostic(`cannot delete pool "` + pool + `": it still has 1 container\(s\) or volume\(s\): other-workspace \(on ` + node2 + `\)`),
			},
			{ // once the other workspace's container is gone, the host leaves
				PreConfig: func() { removePoolContainers(t, set, pool) },
				Config:    env.ProviderHCL() + accPool(pool, "spread", onlyNode1),
				Check:     checkRecords(set, pool, node1),
			},
		},
	})
}

func positiveInt(value string) error {
	n, err := strconv.ParseInt(value, 10, 64)
	if err != nil || n <= 0 {
		return fmt.Errorf("want a positive whole number, got %q", value)
	}
	return nil
}

// removePoolContainers removes every container of the pool from the engines.
func removePoolContainers(t *testing.T, set *engine.Set, pool string) {
	t.Helper()
	ctx := context.Background()
	byHost, err := poolContainers(ctx, set, pool)
	if err != nil {
		t.Fatal(err)
	}
	for host, containers := range byHost {
		eng, err := set.Get(host)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range containers {
			if err := eng.Remove(ctx, c.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// A targeted destroy and a targeted apply work from the container's own
// state: the pool resource is not touched by either.
func TestAccTargetedDestroyAndApply(t *testing.T) {
	t.Parallel()
	env := accEnv(t)
	set := accEngines(t, env)
	const pool = "pl-target"
	cleanupPool(t, set, pool)
	config := env.ProviderHCL() + accPool(pool, "spread", accHosts(env, 1, "512MiB", 44700)) +
		lcContainer("a", pool, "a", env.Image, `cpu = 0.1`, `memory = "16MiB"`) +
		lcContainer("b", pool, "b", env.Image, `cpu = 0.1`, `memory = "16MiB"`)
	w := newCLIWorkspace(t, env, config)
	ctx := context.Background()
	names := func() map[string]bool {
		t.Helper()
		byHost, err := poolContainers(ctx, set, pool)
		if err != nil {
			t.Fatal(err)
		}
		found := map[string]bool{}
		for _, containers := range byHost {
			for _, c := range containers {
				found[c.Name] = true
			}
		}
		return found
	}
	step := func(want map[string]bool, args ...string) {
		t.Helper()
		if out, err := w.run(ctx, args...); err != nil {
			t.Fatalf("terraform %v: %v\n%s", args, err, out)
		}
		if got := names(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("after terraform %v the engines hold %v, want %v", args, got, want)
		}
	}
	step(map[string]bool{"a": true, "b": true}, "apply", "-auto-approve")
	step(map[string]bool{"b": true}, "destroy", "-auto-approve", "-target=berth_container.a")
	step(map[string]bool{"a": true, "b": true}, "apply", "-auto-approve", "-target=berth_container.a")
	step(map[string]bool{}, "destroy", "-auto-approve")
	if err := checkRecords(set, pool)(nil); err != nil {
		t.Error(err)
	}
}
