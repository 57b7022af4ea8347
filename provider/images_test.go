package provider

import (
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// Every image setting refuses bad input with a diagnostic on that
// attribute, before anything reaches an engine.
func TestImageSettingsRejectBadInput(t *testing.T) {
	engines := `engines = { node1 = { endpoint = "unix:///var/run/docker.sock" } }`
	container := func(attrs string) string {
		return "resource \"berth_container\" \"x\" {\n  pool = \"p\"\n  name = \"x\"\n  " + attrs + "\n}\n"
	}
	pool := `data "berth_pool" "any" { name = "any" }`
	cases := map[string]struct {
		config string
		want   string
	}{
		"registry address": {
			config: `provider "berth" {
  ` + engines + `
  registry_auth = [{ address = "not a registry!", username = "u", password = "p" }]
}
` + pool,
			want: `Invalid registry address...registry_auth\[0\].address..."not a registry!" is not a registry host`,
		},
		"username without password": {
			config: `provider "berth" {
  ` + engines + `
  registry_auth = [{ address = "registry.example.com", username = "u" }]
}
` + pool,
			want: `registry_auth\[0\].password...must be specified when...registry_auth\[0\].username`,
		},
		"username and config_file": {
			config: `provider "berth" {
  ` + engines + `
  registry_auth = [{ address = "registry.example.com", username = "u", password = "p", config_file = "/etc/docker.json" }]
}
` + pool,
			want: `registry_auth\[0\].config_file...cannot be specified when...registry_auth\[0\].username`,
		},
		"missing config_file": {
			config: `provider "berth" {
  ` + engines + `
  registry_auth = [{ address = "registry.example.com", config_file = "/nonexistent/berth/config.json" }]
}
` + pool,
			want: `Invalid registry_auth...registry registry.example.com: config file: open /nonexistent/berth/config.json: no such file`,
		},
		"same registry twice": {
			config: `provider "berth" {
  ` + engines + `
  registry_auth = [
    { address = "registry.example.com", username = "u", password = "p" },
    { address = "https://registry.example.com/", username = "v", password = "q" },
  ]
}
` + pool,
			want: `Invalid registry_auth...registry https://registry.example.com/ is given twice`,
		},
		"registry_auth in remote mode": {
			config: `provider "berth" {
  scheduler_url = "http://127.0.0.1:1"
  registry_auth = [{ address = "registry.example.com", username = "u", password = "p" }]
}
` + pool,
			want: `registry_auth needs engines...berthd serve --registry-auth registries.json`,
		},
		"empty pull trigger": {
			config: `provider "berth" {
  ` + engines + `
}
` + container(`image = "nginx:1.27"
  pull_triggers = [""]`),
			want: `pull_triggers...string length must be at least 1`,
		},
		"image reference": {
			config: `provider "berth" {
  ` + engines + `
}
` + container(`image = "Nginx:latest"`),
			want: `Invalid image reference...Attribute image: "Nginx:latest"...must be lowercase`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			resource.UnitTest(t, resource.TestCase{
				ProtoV6ProviderFactories: newFakeEngines().factories(),
				Steps:                    []resource.TestStep{{Config: tc.config, ExpectError: diagnostic(tc.want)}},
			})
		})
	}
}
