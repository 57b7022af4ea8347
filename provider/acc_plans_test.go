package provider

import (
	"context"
	"fmt"
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
