package provider

import (
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

func TestPoolDataSourceReportsUsage(t *testing.T) {
	engines := newFakeEngines()
	config := poolConfig + `
resource "berth_container" "a" {
  pool   = berth_pool.dc1.id
  name   = "a"
  image  = "app:1"
  cpu    = 0.5
  memory = "256MiB"
  host   = "node2"
}
`
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: engines.factories(),
		Steps: []resource.TestStep{
			{Config: config},
			{
				Config: config + `data "berth_pool" "dc1" { name = "dc1" }`,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.berth_pool.dc1", tfjsonpath.New("strategy"), knownvalue.StringExact("spread")),
					statecheck.ExpectKnownValue("data.berth_pool.dc1", tfjsonpath.New("hosts").AtMapKey("node2"), knownvalue.ObjectExact(map[string]knownvalue.Check{
						"labels":          knownvalue.MapExact(map[string]knownvalue.Check{"zone": knownvalue.StringExact("b")}),
						"cpu":             knownvalue.Float64Exact(2),
						"memory":          knownvalue.Int64Exact(1 << 30),
						"cpu_reserved":    knownvalue.Float64Exact(0.5),
						"memory_reserved": knownvalue.Int64Exact(256 << 20),
						"cpu_free":        knownvalue.Float64Exact(1.5),
						"memory_free":     knownvalue.Int64Exact(768 << 20),
						"containers":      knownvalue.Int64Exact(1),
						"max_containers":  knownvalue.Int64Exact(0),
						"healthy":         knownvalue.Bool(true),
						"volumes":         knownvalue.Int64Exact(0),
						"disk":            knownvalue.Int64Exact(0),
						"disk_reserved":   knownvalue.Int64Exact(0),
						"disk_free":       knownvalue.Int64Exact(0),
						"gpus":            knownvalue.Int64Exact(0),
						"gpus_reserved":   knownvalue.Int64Exact(0),
						"gpus_free":       knownvalue.Int64Exact(0),
						"gpu_ids_held":    knownvalue.ListExact([]knownvalue.Check{}),
					})),
					statecheck.ExpectKnownValue("data.berth_pool.dc1", tfjsonpath.New("hosts").AtMapKey("node1").AtMapKey("containers"), knownvalue.Int64Exact(0)),
				},
			},
		},
	})
}

func TestPoolDataSourceUnknownPool(t *testing.T) {
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: newFakeEngines().factories(),
		Steps: []resource.TestStep{{
			Config:      providerBlock + `data "berth_pool" "nope" { name = "nope" }`,
			ExpectError: diagnostic(`Cannot read pool "nope"...not found`),
		}},
	})
}
