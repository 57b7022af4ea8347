package provider

import (
	"context"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

// providerBlock is a provider block with three engines, shared by the
// resource tests.
const providerBlock = `
provider "berth" {
  engines = {
    node1 = { endpoint = "unix:///run/berth-test/node1.sock" }
    node2 = { endpoint = "unix:///run/berth-test/node2.sock" }
    node3 = { endpoint = "ssh://ops@node3.invalid" }
  }
}
`

func TestProviderSchemaIsValid(t *testing.T) {
	ctx := context.Background()
	resp := &provider.SchemaResponse{}
	New("test")().Schema(ctx, provider.SchemaRequest{}, resp)
	if resp.Diagnostics.HasError() {
		t.Fatalf("schema: %v", resp.Diagnostics)
	}
	if diags := resp.Schema.ValidateImplementation(ctx); diags.HasError() {
		t.Fatalf("schema implementation: %v", diags)
	}
}

func TestProviderRejectsBadEngines(t *testing.T) {
	cases := map[string]struct {
		engines string
		want    string
	}{
		"endpoint scheme": {
			engines: `node1 = { endpoint = "http://10.0.0.1:2375" }`,
			want:    `engines\["node1"\].endpoint...unix:///path/to/docker.sock`,
		},
		"tls on unix": {
			engines: `node1 = { endpoint = "unix:///var/run/docker.sock", tls = { ca_pem = "x" } }`,
			want:    `TLS needs a tcp:// endpoint...engines\["node1"\]: endpoint`,
		},
		"cert without key": {
			engines: `node1 = { endpoint = "tcp://127.0.0.1:2376", tls = { cert_pem = "x" } }`,
			want:    `key_pem`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			resource.UnitTest(t, resource.TestCase{
				ProtoV6ProviderFactories: newFakeEngines().factories(),
				Steps: []resource.TestStep{{
					Config: `
provider "berth" {
  engines = { ` + tc.engines + ` }
}
data "berth_pool" "any" { name = "any" }
`,
					ExpectError: diagnostic(tc.want),
				}},
			})
		})
	}
}

func TestProviderAcceptsTLSOnTCP(t *testing.T) {
	engines := newFakeEngines()
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: engines.factories(),
		Steps: []resource.TestStep{{
			Config: `
provider "berth" {
  engines = {
    node1 = {
      endpoint = "tcp://127.0.0.1:2376"
      tls      = { ca_pem = "ca", cert_pem = "cert", key_pem = "key" }
    }
  }
}
resource "berth_pool" "p" {
  name  = "p"
  hosts = { node1 = {} }
}
`,
		}},
	})
}

// Engines known only at apply: plan skips the checks that need them, and
// apply configures the backend with the real values.
func TestProviderWithEnginesKnownOnlyAtApply(t *testing.T) {
	engines := newFakeEngines()
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: engines.factories(),
		Steps: []resource.TestStep{{
			Config: `
resource "terraform_data" "endpoint" {
  input = "unix:///run/berth-test/late.sock"
}
provider "berth" {
  engines = { late = { endpoint = terraform_data.endpoint.output } }
}
resource "berth_pool" "p" {
  name  = "p"
  hosts = { late = {} }
}
resource "berth_container" "c" {
  pool  = berth_pool.p.id
  name  = "c"
  image = "app:1"
}`,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("berth_container.c", tfjsonpath.New("host"), knownvalue.StringExact("late")),
			},
		}},
	})
}
