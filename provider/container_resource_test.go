package provider

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

// poolConfig declares a pool of two hosts with 2 CPUs and 1GiB each.
const poolConfig = providerBlock + `
resource "berth_pool" "dc1" {
  name = "dc1"
  hosts = {
    node1 = { labels = { zone = "a" }, cpu = 2, memory = "1GiB" }
    node2 = { labels = { zone = "b" }, cpu = 2, memory = "1GiB" }
  }
}
`

func TestContainerRejectsBadInput(t *testing.T) {
	cases := map[string]struct {
		attrs string
		want  string
	}{
		"memory lots": {
			attrs: `memory = "lots"`,
			want:  `Invalid memory size...Attribute memory: "lots" is not a memory size`,
		},
		"malformed constraint": {
			attrs: `constraints = ["zone != c", "zone <> a"]`,
			want:  `Invalid constraint...Attribute constraints\[1\]: constraint "zone <> a": at 6: expected an operator...e.g. "zone != c"`,
		},
		"duplicate external ports": {
			attrs: `ports = [{ internal = 80, external = 8080 }, { internal = 81, external = 8080 }]`,
			want:  `Duplicate external port...8080/tcp is already used by ports\[0\]`,
		},
		"internal port range": {
			attrs: `ports = [{ internal = 70000 }]`,
			want:  `ports\[0\].internal value must be between 1 and 65535`,
		},
		"restart policy": {
			attrs: `restart = "sometimes"`,
			want:  `Attribute restart value must be one of`,
		},
		"bad name": {
			attrs: `name_override = "web.1"`,
			want:  `Attribute name must be 1-128 characters`,
		},
		"bad duration": {
			attrs: `stop_timeout = "ten seconds"`,
			want:  `Invalid duration...Attribute stop_timeout`,
		},
		"zero cpu": {
			attrs: `cpu = 0`,
			want:  `CPU too small...Attribute cpu: 0 CPU is below 0.01`,
		},
		"cpu below what the kernel enforces": {
			attrs: `cpu = 0.005`,
			want:  `CPU too small...Attribute cpu: 0.005 CPU is below 0.01, the smallest CPU limit the kernel enforces`,
		},
		"huge cpu": {
			attrs: `cpu = 1e30`,
			want:  `CPU too large...Attribute cpu: 1e\+30 CPU is more than any host has`,
		},
		"memory without a unit": {
			attrs: `memory = "512"`,
			want:  `Invalid memory size...Attribute memory: "512" has no unit: write "512MiB" for megabytes`,
		},
		"memory that overflows": {
			attrs: `memory = "9999999TiB"`,
			want:  `Invalid memory size...Attribute memory: memory size "9999999TiB" is too large: at most 1024TiB`,
		},
		"max_per_host without spread_group": {
			attrs: `max_per_host = 2`,
			want:  `Invalid Attribute Combination...Attribute "spread_group" must be specified when "max_per_host" is\s+specified`,
		},
	}
	for caseName, tc := range cases {
		t.Run(caseName, func(t *testing.T) {
			name, attrs := `"web"`, tc.attrs
			if override, ok := strings.CutPrefix(tc.attrs, "name_override = "); ok {
				name, attrs = override, ""
			}
			rejectsPlan(t, `
resource "berth_container" "web" {
  pool  = berth_pool.dc1.id
  name  = `+name+`
  image = "nginx:1.27"
  `+attrs+`
}`, tc.want)
		})
	}
}

func TestContainerPlanFailsWhenNothingFits(t *testing.T) {
	engines := newFakeEngines()
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: engines.factories(),
		Steps: []resource.TestStep{
			{Config: poolConfig},
			{
				Config: poolConfig + `
resource "berth_container" "big" {
  pool   = berth_pool.dc1.id
  name   = "big"
  image  = "nginx:1.27"
  memory = "2GiB"
}`,
				ExpectError: diagnostic(`Container dc1/big does not fit...no host fits big`),
			},
		},
	})
}

func TestContainerLifecycle(t *testing.T) {
	engines := newFakeEngines()
	web := func(extra string) string {
		return poolConfig + `
resource "berth_container" "web" {
  pool         = berth_pool.dc1.id
  name         = "web-0"
  image        = "nginx:1.27"
  command      = ["nginx", "-g", "daemon off;"]
  env          = { MODE = "prod" }
  ports        = [{ internal = 80 }]
  constraints  = ["zone != c"]
  spread_group = "web"
  max_per_host = 4
  ` + extra + `
}`
	}
	container := "berth_container.web"
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: engines.factories(),
		Steps: []resource.TestStep{
			{
				Config: web(`memory = "256MiB"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectUnknownValue(container, tfjsonpath.New("host")),
					plancheck.ExpectKnownValue(container, tfjsonpath.New("id"), knownvalue.StringExact("dc1/web-0")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(container, tfjsonpath.New("host"), knownvalue.StringExact("node1")),
					statecheck.ExpectKnownValue(container, tfjsonpath.New("cpu"), knownvalue.Float64Exact(0.25)),
					statecheck.ExpectKnownValue(container, tfjsonpath.New("restart"), knownvalue.StringExact("unless-stopped")),
					statecheck.ExpectKnownValue(container, tfjsonpath.New("published_ports"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.ObjectExact(map[string]knownvalue.Check{
							"internal": knownvalue.Int64Exact(80),
							"external": knownvalue.Int64Exact(30010),
							"protocol": knownvalue.StringExact("tcp"),
							"ip":       knownvalue.Null(),
							"address":  knownvalue.StringExact("10.0.0.1:30010"),
						}),
					})),
				},
			},
			{
				// Equal memory, other spelling: nothing to do.
				Config: web(`memory = "0.25GiB"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
			{
				// Growing within the host's free memory: resized in place.
				Config: web(`memory = "512MiB"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(container, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(container, tfjsonpath.New("container_id"), knownvalue.StringExact("c0001")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(container, tfjsonpath.New("container_id"), knownvalue.StringExact("c0001")),
					statecheck.ExpectKnownValue(container, tfjsonpath.New("memory"), knownvalue.StringExact("512MiB")),
				},
			},
			{
				// Stopped out of band: the plan starts it, in place.
				PreConfig: engines.mutate(func(f *fakeEngines) { f.containers["dc1/web-0"].Running = false }),
				Config:    web(`memory = "512MiB"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(container, plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue(container, tfjsonpath.New("ip_address")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(container, tfjsonpath.New("running"), knownvalue.Bool(true)),
				},
			},
			{
				ResourceName:      container,
				ImportState:       true,
				ImportStateId:     "dc1/web-0",
				ImportStateVerify: true,
				// Import records the picked host port, not external = 0.
				ImportStateVerifyIgnore: []string{"ports"},
			},

			{
				// Removed out of band: the plan re-creates it.
				PreConfig: engines.mutate(func(f *fakeEngines) { delete(f.containers, "dc1/web-0") }),
				Config:    web(`memory = "512MiB"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(container, plancheck.ResourceActionCreate),
				}},
			},
		},
	})
}

func TestContainerReplacements(t *testing.T) {
	engines := newFakeEngines()
	config := func(bHost, bMemory, image string) string {
		return poolConfig + `
resource "berth_container" "a" {
  pool   = berth_pool.dc1.id
  name   = "a"
  image  = "app:1"
  memory = "512MiB"
  host   = "node1"
}
resource "berth_container" "b" {
  pool   = berth_pool.dc1.id
  name   = "b"
  image  = "` + image + `"
  memory = "` + bMemory + `"
  ` + bHost + `
}`
	}
	b := "berth_container.b"
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: engines.factories(),
		Steps: []resource.TestStep{
			{
				Config: config(`host = "node1"`, "256MiB", "app:1"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectKnownValue(b, tfjsonpath.New("host"), knownvalue.StringExact("node1")),
				}},
			},
			{
				// Unpinning keeps the container where it is.
				Config: config("", "256MiB", "app:1"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
			{
				// 512MiB + 768MiB exceed node1's 1GiB: replaced, lands on node2.
				Config: config("", "768MiB", "app:1"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(b, plancheck.ResourceActionDestroyBeforeCreate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(b, tfjsonpath.New("host"), knownvalue.StringExact("node2")),
				},
			},
			{
				Config: config("", "768MiB", "app:2"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(b, plancheck.ResourceActionDestroyBeforeCreate),
				}},
			},
			{
				// Pinning elsewhere moves it; a 768MiB container no longer fits node1.
				Config:      config(`host = "node1"`, "768MiB", "app:2"),
				ExpectError: diagnostic(`Container dc1/b does not fit...no host fits b`),
			},
		},
	})
}

func TestContainerImportRejectsBadID(t *testing.T) {
	importTarget := poolConfig + `
resource "berth_container" "web" {
  pool  = "dc1"
  name  = "web"
  image = "app:1"
}`
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: newFakeEngines().factories(),
		Steps: []resource.TestStep{
			{Config: poolConfig},
			{
				Config:        importTarget,
				ResourceName:  "berth_container.web",
				ImportState:   true,
				ImportStateId: "web",
				ExpectError:   diagnostic(`Invalid import ID..."web" is not <pool>/<name>`),
			},
			{
				Config:        importTarget,
				ResourceName:  "berth_container.web",
				ImportState:   true,
				ImportStateId: "dc1/missing",
				ExpectError:   diagnostic(`Container not found...No Berth container named "missing" in pool "dc1"`),
			},
		},
	})
}

// The container's spec carries every configured attribute to the backend.
func TestContainerSpecFromPlan(t *testing.T) {
	engines := newFakeEngines()
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: engines.factories(),
		Steps: []resource.TestStep{{
			Config: poolConfig + `
resource "berth_container" "web" {
  pool        = berth_pool.dc1.id
  name        = "web"
  image       = "app:1"
  cpu         = 0.5
  memory      = "64MiB"
  command     = ["/app", "-serve"]
  env         = { MODE = "prod" }
  ports       = [{ internal = 8080, external = 8080, protocol = "udp" }]
  constraints = ["zone == b"]
  restart     = "always"
  healthcheck = { test = ["CMD", "/app", "-check"], interval = "5s", retries = 3 }
}`,
			Check: func(*terraform.State) error {
				engines.mu.Lock()
				defer engines.mu.Unlock()
				got := engines.containers["dc1/web"]
				want := backend.Resources{MilliCPU: 500, MemoryBytes: 64 << 20}
				if got == nil || got.Resources != want || got.Restart != "always" || len(got.Command) != 2 ||
					got.Env["MODE"] != "prod" || got.Ports[0].External != 8080 || got.Ports[0].Protocol != "udp" {
					return fmt.Errorf("backend got %+v", got)
				}
				return nil
			},
		}},
	})
}

// A container made elsewhere (here: put straight onto the fake engines) is
// imported, and the configuration that made it then plans no change, even
// with external = 0 against the port that was picked.
func TestContainerImportThenPlanIsEmpty(t *testing.T) {
	engines := newFakeEngines()
	config := poolConfig + `
resource "berth_container" "web" {
  pool   = berth_pool.dc1.id
  name   = "web-0"
  image  = "app:1"
  memory = "0.25GiB"
  ports  = [{ internal = 8080, external = 0 }]
}`
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: engines.factories(),
		Steps: []resource.TestStep{
			{Config: poolConfig},
			{
				PreConfig: engines.mutate(func(f *fakeEngines) {
					res := backend.Resources{MilliCPU: 250, MemoryBytes: 256 << 20}
					f.containers["dc1/web-0"] = &backend.ContainerState{
						Ref:           backend.ContainerRef{Pool: "dc1", Name: "web-0", Host: "node2", ContainerID: "made-elsewhere", Resources: res},
						ReservationID: "r-elsewhere",
						Image:         "app:1",
						Resources:     res,
						Ports:         []engine.PortBinding{{Internal: 8080, External: 31234, Protocol: "tcp"}},
						Restart:       "unless-stopped",
						Running:       true,
					}
				}),
				Config:             config,
				ResourceName:       "berth_container.web",
				ImportState:        true,
				ImportStateId:      "dc1/web-0",
				ImportStatePersist: true,
			},
			{
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
		},
	})
}
