package provider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
)

// Networks on the real engines. The engines share one kernel, so a Linux
// bridge the test creates is the common parent of a macvlan network across
// them, as a switch would be across hosts. Pools are named pn-*; host
// ports stay within 37600-38299.

// netPool is TestAccNetworks' pool.
const netPool = "pn-net"

// netParent creates a bridge interface for macvlan networks and removes
// it when the test ends. It needs root, as the engines do.
func netParent(t *testing.T) string {
	t.Helper()
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	name := "bnet" + hex.EncodeToString(suffix)
	for _, args := range [][]string{{"link", "add", name, "type", "bridge"}, {"link", "set", name, "up"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s (the network tests need root and iproute2)", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "link", "del", name).CombinedOutput(); err != nil {
			t.Errorf("removing the test bridge %s: %v\n%s", name, err, out)
		}
	})
	return name
}

// netFetch asks the container published at address to GET target from
// inside, and returns the answer.
func netFetch(ctx context.Context, address, target string) (string, error) {
	return httpGet(ctx, "http://"+address+"/fetch?url="+url.QueryEscape(target))
}

// netHostname is what the test app answers on "/" in a container: Docker
// names it after the container id.
func netHostname(s *terraform.State, address string) (string, error) {
	id, err := lcAttr(s, address, "container_id")
	if err != nil || len(id) < 12 {
		return "", fmt.Errorf("%s has no container id (%q): %w", address, id, err)
	}
	return "hostname=" + id[:12], nil
}

// netOn reports the pool's network named name on host, nil when absent.
func netOn(ctx context.Context, set *engine.Set, host, pool, name string) (*engine.Network, error) {
	eng, err := set.Get(host)
	if err != nil {
		return nil, err
	}
	return eng.FindNetwork(ctx, pool, name)
}

// cleanupNetworks removes what a failed test left of the pool's networks
// (after cleanupPool's containers: cleanups run last registered first).
func cleanupNetworks(t *testing.T, set *engine.Set, pool string) {
	t.Helper()
	t.Cleanup(func() {
		ctx := context.Background()
		for _, host := range set.Names() {
			eng, err := set.Get(host)
			if err != nil {
				continue
			}
			networks, _ := eng.ListNetworks(ctx, pool)
			for _, n := range networks {
				_ = eng.RemoveNetwork(ctx, n.ID)
			}
		}
	})
}

// One apply of a bridge and a macvlan network with four containers shows
// unique addresses across engines, a container on one engine reaching one
// on another, aliases resolving on one host, and an address deciding the
// host; then plan-time refusals, import, drift, a host joining the pool
// and a refused delete.
func TestAccNetworks(t *testing.T) {
	t.Parallel()
	env := accEnv(t)
	set := accEngines(t, env)
	if len(env.Engines) < 3 {
		t.Fatalf("the network test needs 3 engines, the environment has %d", len(env.Engines))
	}
	const pool = netPool
	cleanupNetworks(t, set, pool)
	cleanupPool(t, set, pool)
	parent := netParent(t)
	allHosts := accHosts(env, 1, "512MiB", 37600)
	networks := `
resource "berth_network" "front" {
  pool = berth_pool.` + pool + `.id
  name = "front"
}
resource "berth_network" "lan" {
  pool               = berth_pool.` + pool + `.id
  name               = "lan"
  driver             = "macvlan"
  parent             = "` + parent + `"
  subnet             = "10.231.0.0/24"
  host_prefix_length = 26
  labels             = { tier = "back" }
}
`
	containers := lcContainer("a", pool, "a", env.Image, `host = "node1"`, `cpu = 0.1`, `memory = "32MiB"`,
		`ports = [{ internal = 8080 }]`,
		`networks = [{ name = berth_network.front.name }, { name = berth_network.lan.name }]`) +
		lcContainer("api", pool, "api", env.Image, `host = "node1"`, `cpu = 0.1`, `memory = "32MiB"`,
			`networks = [{ name = berth_network.front.name, aliases = ["api", "api.internal"] }]`) +
		lcContainer("b", pool, "b", env.Image, `cpu = 0.1`, `memory = "32MiB"`,
			`networks = [{ name = berth_network.lan.name, ipv4_address = "10.231.0.70" }]`) +
		lcContainer("c", pool, "c", env.Image, `host = "node2"`, `cpu = 0.1`, `memory = "32MiB"`,
			`networks = [{ name = berth_network.lan.name }]`)
	twoHosts := env.ProviderHCL() + accPool(pool, "spread", allHosts[:2]) + networks
	config := twoHosts + containers
	threeHosts := env.ProviderHCL() + accPool(pool, "spread", allHosts) + networks + containers
	bad := func(attrs string) string {
		return config + lcContainer("d", pool, "d", env.Image, `cpu = 0.1`, `memory = "32MiB"`, attrs)
	}
	ctx := context.Background()
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: accFactories(),
		Steps: []resource.TestStep{
			{
				Config: config,
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("berth_network.lan", "gateway", "10.231.0.1"),
					resource.TestCheckResourceAttr("berth_network.lan", "hosts.node1.ip_range", "10.231.0.0/26"),
					resource.TestCheckResourceAttr("berth_network.lan", "hosts.node2.ip_range", "10.231.0.64/26"),
					resource.TestCheckNoResourceAttr("berth_network.front", "hosts.node1.ip_range"),
					// The fixed address is in node2's slice: b lands there.
					resource.TestCheckResourceAttr("berth_container.b", "host", "node2"),
					resource.TestCheckResourceAttr("berth_container.b", "network_addresses.lan", "10.231.0.70"),
					func(s *terraform.State) error { return netCheckAddresses(s) },
					func(s *terraform.State) error { return netCheckReach(ctx, s) },
					func(s *terraform.State) error { return netCheckEngines(ctx, s, set, "node1", "node2") },
				),
			},
			{
				Config:            config,
				ResourceName:      "berth_network.lan",
				ImportState:       true,
				ImportStateId:     pool + "/lan",
				ImportStateVerify: true,
			},
			{
				// networks come back from the container's record.
				Config:            config,
				ResourceName:      "berth_container.a",
				ImportState:       true,
				ImportStateId:     pool + "/a",
				ImportStateVerify: true,
				// external = 0 means any port; the engine records the one picked.
				ImportStateVerifyIgnore: []string{"ports.0.external"},
			},
			{
				Config:      bad(`host = "node1"` + "\n" + `networks = [{ name = berth_network.lan.name, ipv4_address = "10.231.0.90" }]`),
				PlanOnly:    true,
				ExpectError: diagnostic(`Address on another host...with berth_container.d...networks\[0\].ipv4_address = "10.231.0.90" is in host "node2"'s slice of network "lan" \(node1 10.231.0.0/26, node2 10.231.0.64/26\), but host puts the container on "node1"`),
			},
			{
				Config:      bad(`networks = [{ name = berth_network.lan.name, ipv4_address = "10.231.0.200" }]`),
				PlanOnly:    true,
				ExpectError: diagnostic(`Address in no host's slice...networks\[0\].ipv4_address = "10.231.0.200" is in no host's slice of network "lan"`),
			},
			{
				Config:      bad(`networks = [{ name = "nope" }]`),
				PlanOnly:    true,
				ExpectError: diagnostic(`Cannot look up network "nope"...networks\[0\].name: pool "pn-net" has no network "nope": declare it with a berth_network resource`),
			},
			{
				// Removed out of band on node2: the plan puts it back there.
				PreConfig: func() {
					n, err := netOn(ctx, set, "node2", pool, "front")
					if err != nil || n == nil {
						t.Fatalf("front on node2: %v %v", n, err)
					}
					eng, _ := set.Get("node2")
					if err := eng.RemoveNetwork(ctx, n.ID); err != nil {
						t.Fatal(err)
					}
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("berth_network.front", plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue("berth_network.front", netPath("hosts", "node2", "network_id")),
					plancheck.ExpectResourceAction("berth_network.lan", plancheck.ResourceActionNoop),
				}},
				Check: func(s *terraform.State) error { return netCheckEngines(ctx, s, set, "node1", "node2") },
			},
			{
				// node3 joins the pool: both networks are planned onto it,
				// the macvlan one with the next free slice.
				Config: threeHosts,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("berth_pool."+pool, plancheck.ResourceActionUpdate),
					plancheck.ExpectResourceAction("berth_network.front", plancheck.ResourceActionUpdate),
					plancheck.ExpectResourceAction("berth_network.lan", plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue("berth_network.lan", netPath("hosts", "node3", "network_id")),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("berth_network.lan", "hosts.node3.ip_range", "10.231.0.128/26"),
					resource.TestCheckResourceAttr("berth_network.lan", "hosts.node2.ip_range", "10.231.0.64/26"),
					func(s *terraform.State) error { return netCheckEngines(ctx, s, set, "node1", "node2", "node3") },
				),
			},
			{
				// Without its resource, front is destroyed while api and a,
				// which name it, stay: refused, naming them.
				Config: env.ProviderHCL() + accPool(pool, "spread", allHosts) + networks[strings.Index(networks, `resource "berth_network" "lan"`):] +
					strings.ReplaceAll(containers, "berth_network.front.name", `"front"`),
				ExpectError: diagnostic(`Cannot delete network pn-net/front: containers still use it...2 container\(s\) use it: pn-net.a \(on node1\), pn-net.api \(on node1\)`),
			},
			{
				// The refusal removed nothing; with its resource back, the
				// destroy at the end takes the containers off first.
				Config: threeHosts,
				Check:  func(s *terraform.State) error { return netCheckEngines(ctx, s, set, "node1", "node2", "node3") },
			},
		},
	})
	for _, host := range set.Names() {
		for _, name := range []string{"front", "lan"} {
			if n, err := netOn(ctx, set, host, pool, name); err != nil || n != nil {
				t.Errorf("network %s left on %s after destroy: %v %v", name, host, n, err)
			}
		}
	}
}

// netCheckAddresses: every container's lan address is in its host's slice,
// and no two are equal.
func netCheckAddresses(s *terraform.State) error {
	seen := map[string]string{}
	for _, c := range []string{"a", "b", "c"} {
		address := "berth_container." + c
		ip, _ := lcAttr(s, address, "network_addresses.lan")
		host, _ := lcAttr(s, address, "host")
		slice, _ := lcAttr(s, "berth_network.lan", "hosts."+host+".ip_range")
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			return fmt.Errorf("%s has no lan address (%q)", address, ip)
		}
		prefix, err := netip.ParsePrefix(slice)
		if err != nil || !prefix.Contains(addr) {
			return fmt.Errorf("%s on %s has lan address %s, outside the host's slice %q", address, host, ip, slice)
		}
		if other, dup := seen[ip]; dup {
			return fmt.Errorf("%s and %s both have %s", other, address, ip)
		}
		seen[ip] = address
	}
	return nil
}

// netCheckReach: a (node1) reaches b and c on node2 over the macvlan
// network, and api by its alias over the bridge.
func netCheckReach(ctx context.Context, s *terraform.State) error {
	published, err := lcAttr(s, "berth_container.a", "published_ports.0.address")
	if err != nil {
		return err
	}
	targets := map[string]string{"berth_container.api": "http://api:8080/", "berth_container.api ": "http://api.internal:8080/"}
	for _, c := range []string{"b", "c"} {
		ip, _ := lcAttr(s, "berth_container."+c, "network_addresses.lan")
		targets["berth_container."+c] = "http://" + ip + ":8080/"
	}
	for address, target := range targets {
		want, err := netHostname(s, strings.TrimSpace(address))
		if err != nil {
			return err
		}
		got, err := netFetch(ctx, published, target)
		if err != nil || !strings.Contains(got, want) {
			return fmt.Errorf("a fetching %s: %q, %w; want the answer of %s (%s)", target, got, err, address, want)
		}
	}
	return nil
}

// netCheckEngines: each host has both networks with the ids in state, the
// macvlan one with its slice as ip_range and the configured labels.
func netCheckEngines(ctx context.Context, s *terraform.State, set *engine.Set, hosts ...string) error {
	for _, host := range hosts {
		for _, name := range []string{"front", "lan"} {
			n, err := netOn(ctx, set, host, netPool, name)
			if err != nil || n == nil {
				return fmt.Errorf("network %s on %s: %v, %w", name, host, n, err)
			}
			id, _ := lcAttr(s, "berth_network."+name, "hosts."+host+".network_id")
			ipRange, _ := lcAttr(s, "berth_network."+name, "hosts."+host+".ip_range")
			if n.ID != id || n.IPRange != ipRange {
				return fmt.Errorf("network %s on %s is %s with ip_range %q; state says %s with %q", name, host, n.ID, n.IPRange, id, ipRange)
			}
			if name == "lan" && (n.Driver != "macvlan" || n.Labels["tier"] != "back") {
				return fmt.Errorf("lan on %s: driver %q labels %v", host, n.Driver, n.Labels)
			}
		}
	}
	return nil
}

// netPath is hosts[host].attr in a planned value.
func netPath(root, host, attr string) tfjsonpath.Path {
	return tfjsonpath.New(root).AtMapKey(host).AtMapKey(attr)
}

// Through berthd (remote mode): the same macvlan network is planned,
// created on every host with its slice, and a fixed address puts its
// container on the slice's host, which reaches it from another engine; a
// second plan is empty.
func TestAccBerthdNetworks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	const pool = "pn-remote"
	env := accEnv(t)
	b, set := rmSetup(ctx, t, pool, 26911, accHosts(env, 1, "512MiB", 37900))
	cleanupNetworks(t, set, pool)
	parent := netParent(t)
	ws := newCLIWorkspace(t, env, remoteProviderHCL(b.url(), b.token, "30m")+`
resource "berth_network" "front" {
  pool = "`+pool+`"
  name = "front"
}
resource "berth_network" "lan" {
  pool               = "`+pool+`"
  name               = "lan"
  driver             = "macvlan"
  parent             = "`+parent+`"
  subnet             = "10.232.0.0/24"
  host_prefix_length = 26
}
resource "berth_container" "a" {
  pool     = "`+pool+`"
  name     = "a"
  image    = "`+env.Image+`"
  host     = "node1"
  cpu      = 0.1
  memory   = "32MiB"
  ports    = [{ internal = 8080 }]
  networks = [{ name = berth_network.front.name }, { name = berth_network.lan.name }]
}
resource "berth_container" "b" {
  pool     = "`+pool+`"
  name     = "b"
  image    = "`+env.Image+`"
  cpu      = 0.1
  memory   = "32MiB"
  networks = [{ name = berth_network.lan.name, ipv4_address = "10.232.0.70" }]
}
output "a" { value = berth_container.a.published_ports[0].address }
output "b" { value = { host = berth_container.b.host, ip = berth_container.b.network_addresses["lan"], id = berth_container.b.container_id } }
output "slices" { value = { for host, h in berth_network.lan.hosts : host => h.ip_range } }
`)
	t.Cleanup(func() { _, _ = ws.run(context.Background(), "destroy", "-auto-approve", "-no-color") })
	if out, err := ws.run(ctx, "apply", "-auto-approve", "-no-color"); err != nil {
		t.Fatalf("apply through berthd: %v\n%s", err, out)
	}
	out, err := ws.run(ctx, "output", "-json")
	if err != nil {
		t.Fatalf("terraform output: %v\n%s", err, out)
	}
	var outputs struct {
		A      struct{ Value string }
		B      struct{ Value map[string]string }
		Slices struct{ Value map[string]string }
	}
	if err := json.Unmarshal([]byte(out), &outputs); err != nil {
		t.Fatalf("outputs %s: %v", out, err)
	}
	want := map[string]string{"node1": "10.232.0.0/26", "node2": "10.232.0.64/26", "node3": "10.232.0.128/26"}
	if !reflect.DeepEqual(outputs.Slices.Value, want) {
		t.Errorf("slices %v, want %v", outputs.Slices.Value, want)
	}
	if bv := outputs.B.Value; bv["host"] != "node2" || bv["ip"] != "10.232.0.70" {
		t.Errorf("b is %v, want on node2 at 10.232.0.70", bv)
	}
	for host, slice := range want {
		n, err := netOn(ctx, set, host, pool, "lan")
		if err != nil || n == nil || n.IPRange != slice {
			t.Errorf("lan on %s: %+v, %v; want ip_range %s", host, n, err, slice)
		}
	}
	id := outputs.B.Value["id"]
	got, err := netFetch(ctx, outputs.A.Value, "http://10.232.0.70:8080/")
	if err != nil || len(id) < 12 || !strings.Contains(got, "hostname="+id[:12]) {
		t.Errorf("a (node1) fetching b (node2, container %q) over lan: %q, %v", id, got, err)
	}
	if code, out := ccExitCode(ctx, t, ws, "plan", "-detailed-exitcode", "-no-color"); code != 0 {
		t.Errorf("replan after apply exited %d, want 0 (no changes):\n%s", code, out)
	}
}
