package provider

import (
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
)

func TestPoolRejectsBadInput(t *testing.T) {
	cases := map[string]struct {
		pool string
		want string
	}{
		"unknown strategy": {
			pool: `name = "dc1"
  strategy = "roundrobin"
  hosts = { node1 = {} }`,
			want: `Attribute strategy value must be one of..."spread"..."binpack"..."random"`,
		},
		"memory lots": {
			pool: `name = "dc1"
  hosts = { node1 = { memory = "lots" } }`,
			want: `Invalid memory size...hosts\["node1"\].memory..."lots" is not a memory size...64GiB`,
		},
		"no hosts": {
			pool: `name = "dc1"
  hosts = {}`,
			want: `Attribute hosts map must contain at least 1 elements`,
		},
		"memory without a unit": {
			pool: `name = "dc1"
  hosts = { node1 = { memory = "4096" } }`,
			want: `Invalid memory size...hosts\["node1"\].memory..."4096" has no unit: write "4096MiB"`,
		},
		"memory that overflows": {
			pool: `name = "dc1"
  hosts = { node1 = { memory = "9999999TiB" } }`,
			want: `hosts\["node1"\].memory...too large: at most 1024TiB`,
		},
		"huge cpu": {
			pool: `name = "dc1"
  hosts = { node1 = { cpu = 1e12 } }`,
			want: `CPU too large...hosts\["node1"\].cpu`,
		},
		"bad name": {
			pool: `name = "DC_1"
  hosts = { node1 = {} }`,
			want: `Attribute name must be 1-63 characters`,
		},
		"bad port range": {
			pool: `name = "dc1"
  hosts = { node1 = { port_range = "40000-30000" } }`,
			want: `Invalid port range...out of order`,
		},
		"disk without a unit": {
			pool: `name = "dc1"
  hosts = { node1 = { disk = "500" } }`,
			want: `Invalid disk size...hosts\["node1"\].disk..."500" has no unit: write "500MiB"...500GiB`,
		},
		"zero disk": {
			pool: `name = "dc1"
  hosts = { node1 = { disk = "0GiB" } }`,
			want: `Invalid disk size...hosts\["node1"\].disk: disk size "0GiB" must be greater than zero`,
		},
		"negative gpus": {
			pool: `name = "dc1"
  hosts = { node1 = { gpus = -1 } }`,
			want: `hosts\["node1"\].gpus value must be at least 0`,
		},
		"gpu ids twice": {
			pool: `name = "dc1"
  hosts = { node1 = { gpu_ids = ["0", "0"] } }`,
			want: `Duplicate value...hosts\["node1"\].gpu_ids names "0" twice`,
		},
		"gpu id with a comma": {
			pool: `name = "dc1"
  hosts = { node1 = { gpu_ids = ["0,1"] } }`,
			want: `hosts\["node1"\].gpu_ids\[0\]...no commas or spaces`,
		},
		"gpus and gpu ids disagree": {
			pool: `name = "dc1"
  hosts = { node1 = { gpus = 3, gpu_ids = ["0", "1"] } }`,
			want: `gpus and gpu_ids disagree...hosts\["node1"\].gpus...gpus = 3 but gpu_ids names 2 GPUs`,
		},
		"host not an engine": {
			pool: `name = "dc1"
  hosts = { node1 = {}, node9 = {} }`,
			want: `Unknown engine...Host "node9" is not an engine of the provider block. Known engines: "node1", "node2", "node3"`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			resource.UnitTest(t, resource.TestCase{
				ProtoV6ProviderFactories: newFakeEngines().factories(),
				Steps: []resource.TestStep{{
					Config:      providerBlock + "resource \"berth_pool\" \"dc1\" {\n  " + tc.pool + "\n}\n",
					ExpectError: diagnostic(tc.want),
				}},
			})
		})
	}
}

func TestPoolPlanNamesUnreachableEngine(t *testing.T) {
	engines := newFakeEngines()
	engines.unreachable["node2"] = true
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: engines.factories(),
		Steps: []resource.TestStep{{
			Config: providerBlock + `
resource "berth_pool" "dc1" {
  name  = "dc1"
  hosts = { node1 = {}, node2 = {} }
}`,
			PlanOnly:    true,
			ExpectError: diagnostic(`Pool "dc1" cannot be set up...node2 \(unix:///run/berth-test/node2.sock\)`),
		}},
	})
}

func TestPoolLifecycle(t *testing.T) {
	engines := newFakeEngines()
	pool := func(node2 string) string {
		return providerBlock + `
resource "berth_pool" "dc1" {
  name = "dc1"
  hosts = {
    node1 = { labels = { zone = "a" } }
    node2 = ` + node2 + `
  }
}
output "id" { value = berth_pool.dc1.id }
`
	}
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: engines.factories(),
		Steps: []resource.TestStep{
			{
				Config: pool(`{ cpu = 2.5, memory = "4GiB", max_containers = 10 }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					// id is known at plan: containers can use it in the same plan.
					plancheck.ExpectKnownOutputValue("id", knownvalue.StringExact("dc1")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("berth_pool.dc1", tfjsonpath.New("strategy"), knownvalue.StringExact("spread")),
					statecheck.ExpectKnownValue("berth_pool.dc1", tfjsonpath.New("hosts").AtMapKey("node2").AtMapKey("port_range"), knownvalue.StringExact("30000-32767")),
					statecheck.ExpectKnownValue("berth_pool.dc1", tfjsonpath.New("hosts").AtMapKey("node2").AtMapKey("discovered_cpus"), knownvalue.Int64Exact(4)),
					statecheck.ExpectKnownValue("berth_pool.dc1", tfjsonpath.New("hosts").AtMapKey("node2").AtMapKey("discovered_memory"), knownvalue.Int64Exact(8<<30)),
					statecheck.ExpectKnownValue("berth_pool.dc1", tfjsonpath.New("hosts").AtMapKey("node1").AtMapKey("engine_version"), knownvalue.StringExact("28.5.2")),
				},
			},
			{
				// The same memory spelled differently is no change.
				Config: pool(`{ cpu = 2.5, memory = "4096MiB", max_containers = 10 }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
			{
				// Resizing and relabelling a host happen in place.
				Config: pool(`{ labels = { zone = "b" }, memory = "8GiB" }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("berth_pool.dc1", plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("berth_pool.dc1", tfjsonpath.New("hosts").AtMapKey("node2").AtMapKey("cpu"), knownvalue.Null()),
					statecheck.ExpectKnownValue("berth_pool.dc1", tfjsonpath.New("hosts").AtMapKey("node2").AtMapKey("memory"), knownvalue.StringExact("8GiB")),
				},
			},
			{
				ResourceName:      "berth_pool.dc1",
				ImportState:       true,
				ImportStateId:     "dc1",
				ImportStateVerify: true,
			},
			{
				// The record vanished from the engines: plan a re-create.
				PreConfig:          engines.mutate(func(f *fakeEngines) { delete(f.pools, "dc1") }),
				Config:             pool(`{ labels = { zone = "b" }, memory = "8GiB" }`),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
		},
	})
}

func TestPoolImportRejectsBadID(t *testing.T) {
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: newFakeEngines().factories(),
		Steps: []resource.TestStep{{
			Config: providerBlock + `
resource "berth_pool" "dc1" {
  name  = "dc1"
  hosts = { node1 = {} }
}`,
			ResourceName:  "berth_pool.dc1",
			ImportState:   true,
			ImportStateId: "Not A Pool",
			ExpectError:   diagnostic(`Invalid import ID...terraform import berth_pool.dc1 dc1`),
		}},
	})
}

// With the real embedded backend and no engine behind the endpoint, plan
// fails and names the host and its endpoint.
func TestPoolPlanWithEmbeddedBackendNamesUnreachableEngine(t *testing.T) {
	socket := "unix://" + t.TempDir() + "/missing.sock"
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: map[string]func() (tfprotov6.ProviderServer, error){
			"berth": providerserver.NewProtocol6WithError(New("test")()),
		},
		Steps: []resource.TestStep{{
			Config: `
provider "berth" {
  engines = { lost = { endpoint = "` + socket + `" } }
}
resource "berth_pool" "dc1" {
  name  = "dc1"
  hosts = { lost = {} }
}`,
			PlanOnly:    true,
			ExpectError: diagnostic(`Pool "dc1" cannot be set up...lost...` + regexp.QuoteMeta(socket)),
		}},
	})
}

// What engines report changes under a pool (a Docker upgrade, more memory):
// an update after that applies cleanly, since apply discovers again, and an
// unchanged pool plans nothing.
func TestPoolUpdateAfterEnginesChanged(t *testing.T) {
	engines := newFakeEngines()
	pool := func(zone string) string {
		return providerBlock + `
resource "berth_pool" "dc1" {
  name  = "dc1"
  hosts = { node1 = { labels = { zone = "` + zone + `" } }, node2 = {} }
}
`
	}
	discovered := func(host, attr string, want knownvalue.Check) statecheck.StateCheck {
		return statecheck.ExpectKnownValue("berth_pool.dc1", tfjsonpath.New("hosts").AtMapKey(host).AtMapKey(attr), want)
	}
	upgraded := engines.mutate(func(f *fakeEngines) {
		f.info = engine.Info{NCPU: 8, MemTotal: 16 << 30, ServerVersion: "29.0.1", APIVersion: "1.52"}
	})
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: engines.factories(),
		Steps: []resource.TestStep{
			{Config: pool("a")},
			{
				// Engines upgraded, pool unchanged: no plan.
				PreConfig: upgraded,
				Config:    pool("a"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
			{
				// An in-place update discovers again.
				Config: pool("b"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("berth_pool.dc1", plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue("berth_pool.dc1", tfjsonpath.New("hosts").AtMapKey("node2").AtMapKey("engine_version")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					discovered("node1", "engine_version", knownvalue.StringExact("29.0.1")),
					discovered("node2", "api_version", knownvalue.StringExact("1.52")),
					discovered("node2", "discovered_cpus", knownvalue.Int64Exact(8)),
					discovered("node1", "discovered_memory", knownvalue.Int64Exact(16<<30)),
				},
			},
		},
	})
}
