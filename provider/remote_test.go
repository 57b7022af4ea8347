package provider

import (
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
	"github.com/berthsh/terraform-provider-berth/scheduler/client"
)

func TestRemoteConfigFallsBackToEnvironment(t *testing.T) {
	env := map[string]string{envSchedulerURL: "http://a:8700, https://b:8700/", envSchedulerToken: "from-env"}
	getenv := func(k string) string { return env[k] }
	unset := BerthProviderModel{
		SchedulerURL: types.StringNull(), SchedulerToken: types.StringNull(),
		SchedulerCAPEM: types.StringNull(), PlacementLease: types.StringNull(),
	}

	cfg, known, diags := remoteConfig(unset, getenv)
	if diags.HasError() || !known {
		t.Fatalf("known=%v %v", known, diags)
	}
	if len(cfg.URLs) != 2 || cfg.URLs[0] != "http://a:8700" || cfg.URLs[1] != "https://b:8700" {
		t.Errorf("URLs %q", cfg.URLs)
	}
	if cfg.Token != "from-env" || cfg.Lease != 30*time.Minute {
		t.Errorf("token %q lease %s, want the environment's token and the 30m default", cfg.Token, cfg.Lease)
	}

	set := unset
	set.SchedulerURL = types.StringValue("http://config:8700")
	set.SchedulerToken = types.StringValue("from-config")
	set.PlacementLease = types.StringValue("2h")
	cfg, _, diags = remoteConfig(set, getenv)
	if diags.HasError() || cfg.URLs[0] != "http://config:8700" || cfg.Token != "from-config" || cfg.Lease != 2*time.Hour {
		t.Errorf("the provider block must win over the environment: %+v %v", cfg, diags)
	}

	unknown := unset
	unknown.SchedulerURL = types.StringUnknown()
	if _, known, diags := remoteConfig(unknown, getenv); known || diags.HasError() {
		t.Errorf("an unknown URL must defer configuration, got known=%v %v", known, diags)
	}

	if _, _, diags := remoteConfig(unset, func(string) string { return "" }); !diags.HasError() {
		t.Error("neither engines nor a berthd URL must be an error")
	}
}

// remoteFactories is a provider in remote mode over the fake engines,
// recording how the berthd client was configured.
func remoteFactories(f *fakeEngines, got *client.Config) map[string]func() (tfprotov6.ProviderServer, error) {
	p := &BerthProvider{version: "test", newRemote: func(cfg client.Config) (backend.Backend, error) {
		*got = cfg
		return &fakeBackend{engines: f, endpoints: map[string]string{}}, nil
	}}
	return map[string]func() (tfprotov6.ProviderServer, error){"berth": providerserver.NewProtocol6WithError(p)}
}

func TestRemoteModeConfiguresTheClient(t *testing.T) {
	t.Setenv(envSchedulerToken, "tok-env")
	var got client.Config
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: remoteFactories(newFakeEngines(), &got),
		Steps: []resource.TestStep{{
			Config: `
provider "berth" {
  scheduler_url   = "http://127.0.0.1:8700,http://127.0.0.1:8701"
  placement_lease = "45m"
}
resource "berth_pool" "p" {
  name  = "p"
  hosts = { anywhere = {} }
}
resource "berth_container" "c" {
  pool  = berth_pool.p.id
  name  = "c"
  image = "app:1"
}`,
		}},
	})
	if len(got.URLs) != 2 || got.Token != "tok-env" || got.Lease != 45*time.Minute || got.UserAgent != "terraform-provider-berth/test" {
		t.Errorf("client config %+v", got)
	}
}

func TestRemoteModeRejectsBadSettings(t *testing.T) {
	t.Setenv(envSchedulerURL, "")
	cases := map[string]struct{ block, want string }{
		"both modes": {
			block: `engines = { n = { endpoint = "unix:///x.sock" } }
  scheduler_url = "http://127.0.0.1:8700"`,
			want: `engines and scheduler_url exclude each other...remove engines`,
		},
		"token with engines": {
			block: `engines = { n = { endpoint = "unix:///x.sock" } }
  scheduler_token = "t"`,
			want: `engines and scheduler_token exclude each other`,
		},
		"neither": {
			block: ``,
			want:  `No engines and no berthd...BERTH_SCHEDULER_URL`,
		},
		"url scheme": {
			block: `scheduler_url = "berthd:8700"`,
			want:  `Invalid scheduler_url...not an http:// or https:// URL`,
		},
		"one bad url of two": {
			block: `scheduler_url = "http://a:8700,ftp://b"`,
			want:  `"ftp://b" is not an http:// or https:// URL`,
		},
		"lease unit": {
			block: `scheduler_url = "http://a:8700"
  placement_lease = "30"`,
			want: `Invalid placement lease...placement_lease...between 1s and 168h`,
		},
		"lease too long": {
			block: `scheduler_url = "http://a:8700"
  placement_lease = "400h"`,
			want: `outside 1s..168h0m0s`,
		},
		"engine timeout": {
			block: `scheduler_url = "http://a:8700"
  engine_timeout = "5s"`,
			want: `engine_timeout needs engines...remote mode`,
		},
		"ca pem": {
			block: `scheduler_url = "https://a:8700"
  scheduler_ca_pem = "not a certificate"`,
			want: `Invalid CA certificate...no PEM certificate found`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var got client.Config
			resource.UnitTest(t, resource.TestCase{
				ProtoV6ProviderFactories: remoteFactories(newFakeEngines(), &got),
				Steps: []resource.TestStep{{
					Config: `
provider "berth" {
  ` + tc.block + `
}
data "berth_pool" "any" { name = "any" }
`,
					ExpectError: diagnostic(tc.want),
				}},
			})
		})
	}
}
