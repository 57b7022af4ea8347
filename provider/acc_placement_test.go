package provider

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/internal/testenv"
)

// Placement acceptance tests: where containers land, checked on the
// engines themselves. Pools are named "pa-*" and publish host ports in
// 45000-48999 only, so these tests run in parallel with everyone else's.

// accPlacement is one placement test's pool and a direct line to the engines.
type accPlacement struct {
	env     *testenv.Env
	engines *engine.Set
	pool    string
	names   []string // engine names, in env order: node1, node2, node3
}

// newAccPlacement opens the engines and removes whatever a failed run
// leaves of the pool. The tests reason about exactly three hosts.
func newAccPlacement(t *testing.T, pool string) *accPlacement {
	t.Helper()
	env := accEnv(t)
	if len(env.Engines) != 3 {
		t.Fatalf("placement tests need 3 engines, the environment has %d", len(env.Engines))
	}
	set := accEngines(t, env)
	cleanupPool(t, set, pool)
	names := make([]string, len(env.Engines))
	for i, e := range env.Engines {
		names[i] = e.Name
	}
	return &accPlacement{env: env, engines: set, pool: pool, names: names}
}

// config is the provider block followed by the given resources.
func (a *accPlacement) config(resources ...string) string {
	return a.env.ProviderHCL() + strings.Join(resources, "")
}

// containers renders `count` berth_container resources labelled label in
// the test's pool, named "<label>-<index>", with body as further attributes.
func (a *accPlacement) containers(label string, count int, body string) string {
	return fmt.Sprintf("resource \"berth_container\" %q {\n  count = %d\n  pool  = berth_pool.%s.id\n  name  = \"%s-${count.index}\"\n  image = %q\n%s\n}\n",
		label, count, a.pool, label, a.env.Image, body)
}

// small is the size of most test containers: 0.1 CPU, 32MiB.
const small = "  cpu    = 0.1\n  memory = \"32MiB\"\n"

// observed lists the pool's containers per engine and insists each runs.
func (a *accPlacement) observed() (map[string][]engine.Container, error) {
	found, err := poolContainers(context.Background(), a.engines, a.pool)
	if err != nil {
		return nil, err
	}
	for host, list := range found {
		for _, c := range list {
			if !c.Running {
				return nil, fmt.Errorf("%s on %s is %s, not running", c.Name, host, c.State)
			}
		}
	}
	return found, nil
}

// checkCounts checks how many of the pool's containers whose spread group
// is group ("" for all) run on each engine; absent engines expect none.
func (a *accPlacement) checkCounts(group string, want map[string]int) resource.TestCheckFunc {
	return func(*terraform.State) error {
		found, err := a.observed()
		if err != nil {
			return err
		}
		got := map[string]int{}
		for host, list := range found {
			for _, c := range list {
				if group == "" || c.SpreadGroup == group {
					got[host]++
				}
			}
		}
		for _, host := range a.names {
			if got[host] != want[host] {
				return fmt.Errorf("group %q: engines hold %v containers per host, want %v", group, got, want)
			}
		}
		return nil
	}
}

// counts returns the pool's containers per engine, in engine order.
func (a *accPlacement) counts() ([]int, error) {
	found, err := a.observed()
	if err != nil {
		return nil, err
	}
	counts := make([]int, len(a.names))
	for i, host := range a.names {
		counts[i] = len(found[host])
	}
	return counts, nil
}

// checkGone is CheckDestroy: no container of the pool on any engine, and
// no pool record left.
func (a *accPlacement) checkGone(*terraform.State) error {
	ctx := context.Background()
	found, err := poolContainers(ctx, a.engines, a.pool)
	if err != nil {
		return err
	}
	for _, host := range a.names {
		if n := len(found[host]); n > 0 {
			return fmt.Errorf("after destroy, %s still holds %d container(s) of pool %s", host, n, a.pool)
		}
		eng, err := a.engines.Get(host)
		if err != nil {
			return err
		}
		rec, err := eng.ReadPoolRecord(ctx, a.pool)
		if err != nil {
			return err
		}
		if rec != nil {
			return fmt.Errorf("after destroy, %s still holds the record of pool %s", host, a.pool)
		}
	}
	return nil
}

// checkRecords checks every engine holds the pool's record.
func (a *accPlacement) checkRecords(*terraform.State) error {
	for _, host := range a.names {
		eng, err := a.engines.Get(host)
		if err != nil {
			return err
		}
		rec, err := eng.ReadPoolRecord(context.Background(), a.pool)
		if err != nil {
			return err
		}
		if rec == nil {
			return fmt.Errorf("%s holds no record of pool %s", host, a.pool)
		}
	}
	return nil
}

// hosts gives the three engines 100-port ranges from portBase and the
// given capacity; labels, when given, go to the hosts in order.
func (a *accPlacement) hosts(cpu float64, memory string, portBase int, labels ...map[string]string) []accPoolHost {
	hosts := accHosts(a.env, cpu, memory, portBase)
	for i := range labels {
		hosts[i].Labels = labels[i]
	}
	return hosts
}

var emptyAfterApply = resource.ConfigPlanChecks{
	PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
}

func TestAccPlacementSpreadEvens(t *testing.T) {
	t.Parallel()
	a := newAccPlacement(t, "pa-spread")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: accFactories(),
		CheckDestroy:             a.checkGone,
		Steps: []resource.TestStep{{
			Config: a.config(
				accPool(a.pool, "spread", a.hosts(2, "1GiB", 45000)),
				a.containers("w", 30, small)),
			ConfigPlanChecks: emptyAfterApply,
			Check: a.checkCounts("", map[string]int{
				a.names[0]: 10, a.names[1]: 10, a.names[2]: 10,
			}),
		}},
	})
}

// Binpack fills the most loaded host that fits, so 30 containers on hosts
// with room for 12 each end 12/12/6. Which host comes first is not fixed
// (equal hosts are walked from a random start), but no host is opened while
// a partly filled one still fits: at most one host is partly filled.
func TestAccPlacementBinpackFills(t *testing.T) {
	t.Parallel()
	a := newAccPlacement(t, "pa-binpack")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: accFactories(),
		CheckDestroy:             a.checkGone,
		Steps: []resource.TestStep{{
			Config: a.config(
				accPool(a.pool, "binpack", a.hosts(1.2, "1GiB", 45300)),
				a.containers("w", 30, small)),
			ConfigPlanChecks: emptyAfterApply,
			Check: func(*terraform.State) error {
				counts, err := a.counts()
				if err != nil {
					return err
				}
				sorted := slices.Sorted(slices.Values(counts))
				if !slices.Equal(sorted, []int{6, 12, 12}) {
					return fmt.Errorf("binpack placed %v containers on %v, want two full hosts (12) and one with 6", counts, a.names)
				}
				return nil
			},
		}},
	})
}

// Hard constraints keep containers off the hosts they exclude; a soft one
// is preferred but not required. Each hard group has 4 members spread
// across hosts, so ignoring a constraint would put one on the excluded
// host.
func TestAccPlacementConstraints(t *testing.T) {
	t.Parallel()
	a := newAccPlacement(t, "pa-constraints")
	n1, n2, n3 := a.names[0], a.names[1], a.names[2]
	group := func(label, constraint string, count int, extra string) string {
		return a.containers(label, count, small+fmt.Sprintf("  constraints  = [%q]\n  spread_group = %q\n%s", constraint, label, extra))
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: accFactories(),
		CheckDestroy:             a.checkGone,
		Steps: []resource.TestStep{{
			Config: a.config(
				accPool(a.pool, "spread", a.hosts(2, "1GiB", 45600,
					map[string]string{"zone": "a", "disk": "hdd"},
					map[string]string{"zone": "b", "disk": "ssd"},
					map[string]string{"zone": "c", "disk": "ssd"})),
				group("notc", "zone != c", 4, ""),
				group("ssd", "disk == ssd", 4, ""),
				group("ac", "zone in [a, c]", 4, ""),
				// Spread alone would put one on each host; the preference
				// puts max_per_host on zone b, and the rest goes elsewhere.
				group("preferb", "~zone == b", 3, "  max_per_host = 2\n")),
			ConfigPlanChecks: emptyAfterApply,
			Check: resource.ComposeAggregateTestCheckFunc(
				a.checkCounts("notc", map[string]int{n1: 2, n2: 2}),
				a.checkCounts("ssd", map[string]int{n2: 2, n3: 2}),
				a.checkCounts("ac", map[string]int{n1: 2, n3: 2}),
				func(*terraform.State) error {
					found, err := a.observed()
					if err != nil {
						return err
					}
					perHost := map[string]int{}
					for host, list := range found {
						for _, c := range list {
							if c.SpreadGroup == "preferb" {
								perHost[host]++
							}
						}
					}
					if perHost[n2] != 2 || perHost[n1]+perHost[n3] != 1 {
						return fmt.Errorf("soft zone == b: placed %v, want 2 on %s (zone b) and 1 elsewhere", perHost, n2)
					}
					return nil
				},
			),
		}},
	})
}

// max_per_host caps a spread group per host, even under binpack (which
// would otherwise stack all members on one host); one member too many fails
// at plan, explaining for every host.
func TestAccPlacementMaxPerHost(t *testing.T) {
	t.Parallel()
	a := newAccPlacement(t, "pa-group")
	n1, n2, n3 := a.names[0], a.names[1], a.names[2]
	pool := accPool(a.pool, "binpack", a.hosts(2, "1GiB", 45900))
	members := func(count int) string {
		return a.containers("g", count, small+"  spread_group = \"g\"\n  max_per_host = 2\n")
	}
	twoEach := a.checkCounts("g", map[string]int{n1: 2, n2: 2, n3: 2})
	reached := "max_per_host 2 reached for spread group g"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: accFactories(),
		CheckDestroy:             a.checkGone,
		Steps: []resource.TestStep{
			{
				Config:           a.config(pool, members(6)),
				ConfigPlanChecks: emptyAfterApply,
				Check:            twoEach,
			},
			{
				Config:   a.config(pool, members(7)),
				PlanOnly: true,
				ExpectError: diagnostic(fmt.Sprintf("Container %s/g-6 does not fit ... no host fits g-6 ...: %s: %s; %s: %s; %s: %s",
					a.pool, n1, reached, n2, reached, n3, reached)),
			},
			{
				// The failed plan created nothing.
				Config:           a.config(pool, members(6)),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				Check:            twoEach,
			},
		},
	})
}

// external = 0 picks host ports from each host's range, distinct per host,
// and they reach the containers.
func TestAccPlacementPickedPorts(t *testing.T) {
	t.Parallel()
	a := newAccPlacement(t, "pa-ports")
	const portBase = 46200
	hosts := a.hosts(2, "1GiB", portBase)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: accFactories(),
		CheckDestroy:             a.checkGone,
		Steps: []resource.TestStep{{
			Config: a.config(
				accPool(a.pool, "spread", hosts),
				a.containers("web", 6, small+`  spread_group = "web"
  env          = { MESSAGE = "hello from web-${count.index}" }
  ports        = [{ internal = 8080, external = 0 }, { internal = 9090, external = 0 }]
`)),
			ConfigPlanChecks: emptyAfterApply,
			Check: resource.ComposeAggregateTestCheckFunc(
				a.checkCounts("web", map[string]int{a.names[0]: 2, a.names[1]: 2, a.names[2]: 2}),
				func(s *terraform.State) error {
					found, err := a.observed()
					if err != nil {
						return err
					}
					for i, host := range a.names {
						low, high := hosts[i].PortMin, hosts[i].PortMin+99
						used := map[int]string{}
						for _, c := range found[host] {
							if len(c.Ports) != 2 {
								return fmt.Errorf("%s on %s publishes %v, want 2 ports", c.Name, host, c.Ports)
							}
							for _, p := range c.Ports {
								if p.External < low || p.External > high {
									return fmt.Errorf("%s on %s publishes %d outside the host's range %d-%d", c.Name, host, p.External, low, high)
								}
								if other, dup := used[p.External]; dup {
									return fmt.Errorf("%s and %s both publish host port %d on %s", other, c.Name, p.External, host)
								}
								used[p.External] = c.Name
							}
							if err := checkPublished(s, c, host); err != nil {
								return err
							}
							if err := expectHTTP(c.Ports[0].External, "message=hello from "+c.Name); err != nil {
								return fmt.Errorf("%s on %s: %w", c.Name, host, err)
							}
						}
					}
					return nil
				},
			),
		}},
	})
}

// checkPublished checks that the state records the container where the
// engine has it, with the ports the engine publishes.
func checkPublished(s *terraform.State, c engine.Container, host string) error {
	index := strings.TrimPrefix(c.Name, "web-")
	rs, ok := s.RootModule().Resources["berth_container.web."+index]
	if !ok {
		return fmt.Errorf("no berth_container.web[%s] in state for %s", index, c.Name)
	}
	attrs := rs.Primary.Attributes
	if attrs["host"] != host || attrs["container_id"] != c.ID {
		return fmt.Errorf("state has %s on %s (%s), the engines on %s (%s)", c.Name, attrs["host"], attrs["container_id"], host, c.ID)
	}
	for i, p := range c.Ports {
		if got := attrs[fmt.Sprintf("published_ports.%d.external", i)]; got != strconv.Itoa(p.External) {
			return fmt.Errorf("state has %s's port %d published on %s, the engine on %d", c.Name, p.Internal, got, p.External)
		}
	}
	return nil
}

// expectHTTP gets http://127.0.0.1:port/ and checks the body contains
// want. A container just started may not listen yet: it is asked a few
// times before the answer counts.
func expectHTTP(port int, want string) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	for range 20 {
		resp, err := client.Get(url)
		if err == nil {
			body, readErr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if readErr == nil && resp.StatusCode == http.StatusOK {
				if !strings.Contains(string(body), want) {
					return fmt.Errorf("GET %s answered %q, want it to contain %q", url, body, want)
				}
				return nil
			}
			err = fmt.Errorf("status %d, body %q, read error %w", resp.StatusCode, body, readErr)
		}
		last = err
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("GET %s: %w", url, last)
}

// A plan that cannot fit fails at plan, naming every host and why, and
// creates nothing.
func TestAccPlacementNoFitFailsAtPlan(t *testing.T) {
	t.Parallel()
	a := newAccPlacement(t, "pa-nofit")
	n1, n2, n3 := a.names[0], a.names[1], a.names[2]
	hosts := a.hosts(1, "1GiB", 46500,
		map[string]string{"zone": "a"}, map[string]string{"zone": "b"}, map[string]string{"zone": "c"})
	hosts[0].Memory = "128MiB"
	hosts[1].CPU = 0.1
	pool := accPool(a.pool, "spread", hosts)
	nothing := a.checkCounts("", nil)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: accFactories(),
		CheckDestroy:             a.checkGone,
		Steps: []resource.TestStep{
			{
				Config: a.config(pool),
				Check:  a.checkRecords,
			},
			{
				// One container no host takes, each for its own reason.
				Config: a.config(pool, `resource "berth_container" "big" {
  pool        = berth_pool.`+a.pool+`.id
  name        = "big"
  image       = "`+a.env.Image+`"
  cpu         = 0.25
  memory      = "200MiB"
  constraints = ["zone != c"]
}
`),
				PlanOnly: true,
				ExpectError: diagnostic(fmt.Sprintf(`Container %s/big does not fit ... no host fits big \(needs 0.25 CPU, 200MiB\): %s: memory 128MiB free; %s: 0.1 CPU free; %s: constraint zone != c`,
					a.pool, n1, n2, n3)),
			},
			{
				// Five containers that each fit alone, but only four fit
				// together (two on each host with 1 CPU): the plan counts
				// its creates together.
				Config:   a.config(pool, a.containers("c", 5, "  cpu    = 0.5\n  memory = \"32MiB\"\n")),
				PlanOnly: true,
				ExpectError: diagnostic(fmt.Sprintf(`no host fits c-[0-4] \(needs 0.5 CPU, 32MiB\): %s: 0 CPU free; %s: 0.1 CPU free; %s: 0 CPU free`,
					n1, n2, n3)),
			},
			{
				Config:           a.config(pool),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				Check:            nothing,
			},
		},
	})
}

// A pinned host is known at plan and is where the container runs; an
// unpinned one is chosen at apply.
func TestAccPlacementPinnedHost(t *testing.T) {
	t.Parallel()
	a := newAccPlacement(t, "pa-pinned")
	n2 := a.names[1]
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: accFactories(),
		CheckDestroy:             a.checkGone,
		Steps: []resource.TestStep{{
			Config: a.config(
				accPool(a.pool, "spread", a.hosts(2, "1GiB", 46800)),
				// Spread would put these on three hosts.
				a.containers("pinned", 3, small+fmt.Sprintf("  host = %q\n  spread_group = \"pinned\"\n", n2)),
				// Placed after the pinned ones, so that spread sees them.
				a.containers("free", 1, small+"  depends_on = [berth_container.pinned]\n")),
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PreApply: []plancheck.PlanCheck{
					plancheck.ExpectKnownValue("berth_container.pinned[0]", tfjsonpath.New("host"), knownvalue.StringExact(n2)),
					plancheck.ExpectKnownValue("berth_container.pinned[2]", tfjsonpath.New("host"), knownvalue.StringExact(n2)),
					plancheck.ExpectUnknownValue("berth_container.free[0]", tfjsonpath.New("host")),
				},
				PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
			},
			Check: resource.ComposeAggregateTestCheckFunc(
				a.checkCounts("pinned", map[string]int{n2: 3}),
				// The unpinned one goes where spread wants it, off the
				// host the pinned ones load.
				resource.TestCheckResourceAttrWith("berth_container.free.0", "host", func(host string) error {
					if host == n2 || !slices.Contains(a.names, host) {
						return fmt.Errorf("free-0 went to %q, want a host other than %s", host, n2)
					}
					return nil
				}),
			),
		}},
	})
}

// A container added to an unchanged pool is placed: the apply process
// never sees the pool resource and resolves the pool from the engines. The
// data source then reports usage as the engines hold it.
func TestAccPlacementLaterContainer(t *testing.T) {
	t.Parallel()
	a := newAccPlacement(t, "pa-later")
	hosts := a.hosts(1.5, "512MiB", 47100)
	hosts[2].MaxPerHost = 5
	pool := accPool(a.pool, "spread", hosts)
	usage := fmt.Sprintf("data \"berth_pool\" \"usage\" {\n  name       = berth_pool.%s.name\n  depends_on = [berth_container.c]\n}\n", a.pool)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: accFactories(),
		CheckDestroy:             a.checkGone,
		Steps: []resource.TestStep{
			{
				Config:           a.config(pool, a.containers("c", 2, small)),
				ConfigPlanChecks: emptyAfterApply,
				Check:            a.checkTotal(2),
			},
			{
				Config: a.config(pool, a.containers("c", 3, small)),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("berth_pool."+a.pool, plancheck.ResourceActionNoop),
						plancheck.ExpectResourceAction("berth_container.c[0]", plancheck.ResourceActionNoop),
						plancheck.ExpectResourceAction("berth_container.c[2]", plancheck.ResourceActionCreate),
					},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					a.checkTotal(3),
					// Three containers, spread: one on each host.
					a.checkCounts("", map[string]int{a.names[0]: 1, a.names[1]: 1, a.names[2]: 1}),
				),
			},
			{
				Config:           a.config(pool, a.containers("c", 3, small), usage),
				ConfigPlanChecks: emptyAfterApply,
				Check:            a.checkUsage("data.berth_pool.usage", hosts),
			},
		},
	})
}

// checkTotal checks the pool's containers on all engines together.
func (a *accPlacement) checkTotal(want int) resource.TestCheckFunc {
	return func(*terraform.State) error {
		counts, err := a.counts()
		if err != nil {
			return err
		}
		total := 0
		for _, n := range counts {
			total += n
		}
		if total != want {
			return fmt.Errorf("engines hold %v containers of %s on %v, want %d in all", counts, a.pool, a.names, want)
		}
		return nil
	}
}

// checkUsage compares the data source, host by host, with what the
// engines hold and the pool's configured capacity.
func (a *accPlacement) checkUsage(address string, hosts []accPoolHost) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		rs, ok := s.RootModule().Resources[address]
		if !ok {
			return fmt.Errorf("%s is not in state", address)
		}
		attrs := rs.Primary.Attributes
		found, err := a.observed()
		if err != nil {
			return err
		}
		if got := attrs["hosts.%"]; got != strconv.Itoa(len(hosts)) {
			return fmt.Errorf("%s reports %s hosts, want %d", address, got, len(hosts))
		}
		for _, h := range hosts {
			var reservedCPU, reservedMemory int64
			for _, c := range found[h.Engine] {
				reservedCPU += c.MilliCPU
				reservedMemory += c.MemoryBytes
			}
			capacityMemory, err := parseMemory(h.Memory)
			if err != nil {
				return err
			}
			capacityCPU := milliCPU(h.CPU)
			want := map[string]int64{
				"containers":      int64(len(found[h.Engine])),
				"max_containers":  int64(h.MaxPerHost),
				"cpu":             capacityCPU,
				"cpu_reserved":    reservedCPU,
				"cpu_free":        capacityCPU - reservedCPU,
				"memory":          capacityMemory,
				"memory_reserved": reservedMemory,
				"memory_free":     capacityMemory - reservedMemory,
			}
			for key, value := range want {
				raw := attrs["hosts."+h.Engine+"."+key]
				got, err := strconv.ParseFloat(raw, 64)
				if strings.HasPrefix(key, "cpu") {
					got *= 1000 // CPUs in the data source, millicores here
				}
				if err != nil || int64(got+0.5) != value {
					return fmt.Errorf("%s: host %s %s = %q, the engines say %d", address, h.Engine, key, raw, value)
				}
			}
			if got := attrs["hosts."+h.Engine+".healthy"]; got != "true" {
				return fmt.Errorf("%s: host %s healthy = %q", address, h.Engine, got)
			}
		}
		return nil
	}
}

// A container pinned to the engine reached over verified TLS is created,
// read back without a diff, reachable, and destroyed.
func TestAccPlacementTLSEngine(t *testing.T) {
	t.Parallel()
	a := newAccPlacement(t, "pa-tls")
	tlsEngine := ""
	for _, e := range a.env.Engines {
		if e.TLS != nil {
			tlsEngine = e.Name
		}
	}
	if tlsEngine == "" {
		t.Fatal("no engine of the test environment is reached over TLS; engines.sh up starts one")
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: accFactories(),
		CheckDestroy:             a.checkGone,
		Steps: []resource.TestStep{{
			Config: a.config(
				accPool(a.pool, "spread", a.hosts(2, "1GiB", 47400)),
				a.containers("t", 1, small+fmt.Sprintf(`  host  = %q
  env   = { MESSAGE = "over tls" }
  ports = [{ internal = 8080 }]
`, tlsEngine))),
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PreApply: []plancheck.PlanCheck{
					plancheck.ExpectKnownValue("berth_container.t[0]", tfjsonpath.New("host"), knownvalue.StringExact(tlsEngine)),
				},
				PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
			},
			Check: resource.ComposeAggregateTestCheckFunc(
				a.checkCounts("", map[string]int{tlsEngine: 1}),
				func(*terraform.State) error {
					found, err := a.observed()
					if err != nil {
						return err
					}
					c := found[tlsEngine][0]
					if len(c.Ports) != 1 {
						return fmt.Errorf("%s publishes %v, want one port", c.Name, c.Ports)
					}
					return expectHTTP(c.Ports[0].External, "message=over tls")
				},
			),
		}},
	})
}
