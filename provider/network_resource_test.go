package provider

import (
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// rejectsPlan checks that resources, beside poolConfig's pool on fake
// engines, fail with the diagnostic want.
func rejectsPlan(t *testing.T, resources, want string) {
	t.Helper()
	resource.UnitTest(t, resource.TestCase{
		ProtoV6ProviderFactories: newFakeEngines().factories(),
		Steps:                    []resource.TestStep{{Config: poolConfig + resources, ExpectError: diagnostic(want)}},
	})
}

func TestNetworkRejectsBadInput(t *testing.T) {
	cases := map[string]struct {
		attrs string
		want  string
	}{
		"unknown driver": {
			attrs: `driver = "overlay"`,
			want:  `Attribute driver value must be one of: \["bridge" "macvlan" "ipvlan"\]`,
		},
		"macvlan without parent": {
			attrs: `driver = "macvlan"` + "\n" + `subnet = "10.20.0.0/16"`,
			want:  `parent is required for macvlan...with berth_network.app...set parent, e.g. parent = "eth0"`,
		},
		"ipvlan without subnet": {
			attrs: `driver = "ipvlan"` + "\n" + `parent = "eth0"`,
			want:  `subnet is required for ipvlan...set subnet, e.g. subnet = "10.20.0.0/16"`,
		},
		"parent on a bridge": {
			attrs: `parent = "eth0"`,
			want:  `parent is only for macvlan and ipvlan...remove parent`,
		},
		"bad parent": {
			attrs: `driver = "macvlan"` + "\n" + `subnet = "10.20.0.0/16"` + "\n" + `parent = "eth 0"`,
			want:  `Attribute parent must be a network interface name such as eth0`,
		},
		"bad cidr": {
			attrs: `subnet = "10.20.0.0/33"`,
			want:  `Invalid subnet...Attribute subnet: "10.20.0.0/33" is not a CIDR subnet such as 10.20.0.0/16`,
		},
		"host bits in subnet": {
			attrs: `subnet = "10.20.1.0/16"`,
			want:  `Invalid subnet...Attribute subnet: "10.20.1.0/16" has host bits set: the subnet is 10.20.0.0/16`,
		},
		"gateway outside the subnet": {
			attrs: `subnet = "10.20.0.0/16"` + "\n" + `gateway = "10.21.0.1"`,
			want:  `Gateway outside the subnet...gateway = "10.21.0.1" is not in subnet 10.20.0.0/16: use an address within it, e.g. 10.20.0.1`,
		},
		"gateway on the network address": {
			attrs: `subnet = "10.20.0.0/16"` + "\n" + `gateway = "10.20.0.0"`,
			want:  `Gateway is not a host address...network or broadcast address of 10.20.0.0/16`,
		},
		"gateway without subnet": {
			attrs: `gateway = "10.20.0.1"`,
			want:  `gateway needs subnet`,
		},
		"gateway not an address": {
			attrs: `subnet = "10.20.0.0/16"` + "\n" + `gateway = "gw"`,
			want:  `Invalid IPv4 address...Attribute gateway: "gw" is not an IPv4 address`,
		},
		"slices larger than the subnet": {
			attrs: `driver = "macvlan"` + "\n" + `parent = "eth0"` + "\n" + `subnet = "10.20.0.0/16"` + "\n" + `host_prefix_length = 12`,
			want:  `Host slices larger than the subnet...host_prefix_length = 12 is shorter than subnet 10.20.0.0/16's /16: use a value from 16 to 30`,
		},
		"slices on a bridge": {
			attrs: `host_prefix_length = 24`,
			want:  `host_prefix_length is only for macvlan and ipvlan`,
		},
		"parent in options": {
			attrs: `options = { parent = "eth0" }`,
			want:  `Attribute options\["parent"\] value must be none of: \["parent"\]`,
		},
		"reserved label": {
			attrs: `labels = { "sh.berth.pool" = "x" }`,
			want:  `Invalid label...label "sh.berth.pool" uses the reserved prefix "sh.berth."`,
		},
		"bad name": {
			attrs: `name_override = "app.1"`,
			want:  `Attribute name must be 1-128 characters`,
		},
	}
	for caseName, tc := range cases {
		t.Run(caseName, func(t *testing.T) {
			name, attrs := `"app"`, tc.attrs
			if override, ok := strings.CutPrefix(tc.attrs, "name_override = "); ok {
				name, attrs = override, ""
			}
			rejectsPlan(t, `
resource "berth_network" "app" {
  pool = berth_pool.dc1.id
  name = `+name+`
  `+attrs+`
}`, tc.want)
		})
	}
}

func TestContainerNetworksRejectBadInput(t *testing.T) {
	cases := map[string]struct {
		networks string
		want     string
	}{
		"a network twice": {
			networks: `[{ name = "app" }, { name = "app", aliases = ["web"] }]`,
			want:     `Network listed twice...networks\[1\].name: network "app" appears more than once in networks`,
		},
		"ipv6 address": {
			networks: `[{ name = "app", ipv4_address = "fd00::1" }]`,
			want:     `Invalid IPv4 address...networks\[0\].ipv4_address: "fd00::1" is not an IPv4 address`,
		},
		"bad alias": {
			networks: `[{ name = "app", aliases = ["web server"] }]`,
			want:     `networks\[0\].aliases\[0\] must be a host name such as "db"`,
		},
		"bad network name": {
			networks: `[{ name = "app/1" }]`,
			want:     `networks\[0\].name must be 1-128 characters`,
		},
		"empty list": {
			networks: `[]`,
			want:     `Attribute networks list must contain at least 1 elements`,
		},
	}
	for caseName, tc := range cases {
		t.Run(caseName, func(t *testing.T) {
			rejectsPlan(t, `
resource "berth_container" "web" {
  pool     = berth_pool.dc1.id
  name     = "web"
  image    = "nginx:1.27"
  networks = `+tc.networks+`
}`, tc.want)
		})
	}
}
