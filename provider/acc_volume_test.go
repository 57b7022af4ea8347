package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
)

// Volume and GPU acceptance tests. Pools are named pv-*; host ports stay
// within 37200-37599 (the backend's capacity tests use 36800-37199).

// accVolume renders a berth_volume in the pool declared by accPool.
func accVolume(address, pool string, attrs ...string) string {
	return fmt.Sprintf("resource \"berth_volume\" %q {\n  pool = berth_pool.%s.id\n  %s\n}\n", address, pool, strings.Join(attrs, "\n  "))
}

// Volumes decide placement: they spread by spread_group and hold disk; a
// container that mounts one lands on its host and keeps the data across a
// replacement; a replacement that cannot fit beside its volume fails at
// plan naming the volume; a mounted volume is not destroyed; a volume
// removed out of band is planned again; import gives back the state.
func TestAccVolumes(t *testing.T) {
	t.Parallel()
	env := accEnv(t)
	set := accEngines(t, env)
	const pool = "pv-volumes"
	cleanupPool(t, set, pool)
	hosts := accHosts(env, 1, "2GiB", 37200)
	hosts[0].Memory = "512MiB" // too small for the db once it grows
	for i := range hosts {
		hosts[i].Disk = "1GiB"
	}
	node1 := env.Engines[0].Name
	volumes := accVolume("data", pool,
		`count        = 3`,
		`name         = "pv-data-${count.index}"`,
		`size         = "600MiB"`,
		`spread_group = "pg"`,
		`labels       = { tier = "db" }`,
		`host         = count.index == 0 ? "`+node1+`" : null`,
		// Placement is greedy, in Terraform's order: an unpinned volume
		// planned first could take the disk the pinned one needs.
		`constraints  = count.index == 0 ? [] : ["node.name != `+node1+`"]`,
	)
	db := func(memory, mode string, extra ...string) string {
		return lcContainer("db", pool, "db", env.Image, append([]string{
			`memory = "` + memory + `"`,
			`env    = { MODE = "` + mode + `" }`,
			`ports  = [{ internal = 8080 }]`,
			`mounts = [{ type = "volume", source = "pv-data-0", target = "/data" }]`,
		}, extra...)...)
	}
	config := func(memory, mode string) string {
		return env.ProviderHCL() + accPool(pool, "spread", hosts) + volumes +
			db(memory, mode, `depends_on = [berth_volume.data]`)
	}
	ctx := context.Background()
	dbURL := func(s *terraform.State, path string) string {
		return "http://" + s.RootModule().Resources["berth_container.db"].Primary.Attributes["published_ports.0.address"] + path
	}
	var firstID string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: accFactories(),
		Steps: []resource.TestStep{
			{
				Config: config("64MiB", "one"),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("berth_volume.data.0", "host", node1),
					resource.TestCheckResourceAttr("berth_container.db", "host", node1),
					resource.TestCheckResourceAttr("berth_volume.data.1", "driver", "local"),
					func(s *terraform.State) error {
						seen := map[string]bool{}
						for i := range 3 {
							host, _ := lcAttr(s, fmt.Sprintf("berth_volume.data.%d", i), "host")
							if seen[host] {
								return fmt.Errorf("two volumes of spread group pg on %s", host)
							}
							seen[host] = true
						}
						firstID, _ = lcAttr(s, "berth_container.db", "container_id")
						body, err := httpGet(ctx, dbURL(s, "/write?path=/data/kept.txt&content=survives"))
						if err != nil {
							return fmt.Errorf("writing to the volume: %q, %w", body, err)
						}
						return nil
					},
				),
			},
			{
				// Replaced (env changed): it follows its volume, data intact.
				Config: config("64MiB", "two"),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("berth_container.db", "host", node1),
					func(s *terraform.State) error {
						if id, _ := lcAttr(s, "berth_container.db", "container_id"); id == firstID {
							return fmt.Errorf("db was not replaced (container %s)", id)
						}
						body, err := httpGet(ctx, dbURL(s, "/file?path=/data/kept.txt"))
						if err != nil || body != "survives" {
							return fmt.Errorf("the volume's file after the replacement: %q, %w", body, err)
						}
						return nil
					},
				),
			},
			{
				// 1GiB fits node2 and node3, not node1, where the volume is.
				Config:      config("1GiB", "three"),
				PlanOnly:    true,
				ExpectError: diagnostic(`no host fits db...` + node1 + `: memory 512MiB free...where volume pv-data-0 lives`),
			},
			{
				Config:            config("64MiB", "two"),
				ResourceName:      "berth_volume.data[1]",
				ImportState:       true,
				ImportStateId:     pool + "/pv-data-1",
				ImportStateVerify: true,
			},
			{
				// Removed out of band (unmounted): planned again.
				PreConfig: func() {
					rmVolume(t, set, "pv-data-2")
				},
				Config:             config("64MiB", "two"),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			{
				Config: config("64MiB", "two"),
			},
			{
				// The volumes leave the configuration while db still mounts one.
				Config:      env.ProviderHCL() + accPool(pool, "spread", hosts) + db("64MiB", "two"),
				ExpectError: diagnostic(`volume ` + pool + `/pv-data-0 on ` + node1 + ` is mounted by ` + pool + `/db`),
			},
			{
				Config: config("64MiB", "two"),
			},
		},
	})
}

// rmVolume removes a Berth volume behind Terraform's back, wherever it is.
func rmVolume(t *testing.T, set *engine.Set, name string) {
	t.Helper()
	for _, host := range set.Names() {
		eng, err := set.Get(host)
		if err == nil {
			err = eng.RemoveVolume(context.Background(), name)
		}
		if err != nil {
			t.Errorf("removing volume %s from %s: %v", name, host, err)
		}
	}
}

// GPUs are a scheduled dimension: four containers created side by side on
// two hosts of two GPUs each get four different devices, see them as
// NVIDIA_VISIBLE_DEVICES, and a fifth does not fit, at plan.
func TestAccGPUsNeverDoubleBooked(t *testing.T) {
	t.Parallel()
	env := accEnv(t)
	set := accEngines(t, env)
	const pool = "pv-gpus"
	cleanupPool(t, set, pool)
	hosts := accHosts(env, 2, "1GiB", 37400)[:2]
	hosts[0].GPUIDs = []string{"GPU-a0", "GPU-a1"}
	hosts[1].GPUIDs = []string{"GPU-b0", "GPU-b1"}
	config := func(n int) string {
		return env.ProviderHCL() + accPool(pool, "binpack", hosts) +
			lcContainer("g", pool, "g-${count.index}", env.Image, fmt.Sprintf("count = %d", n), `cpu = 0.1`, `memory = "32MiB"`, `gpus = 1`) +
			`data "berth_pool" "usage" {
  name       = "` + pool + `"
  depends_on = [berth_container.g]
}
`
	}
	ctx := context.Background()
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: accFactories(),
		Steps: []resource.TestStep{
			{
				Config: config(4),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("data.berth_pool.usage", "hosts."+hosts[0].Engine+".gpus_free", "0"),
					resource.TestCheckResourceAttr("data.berth_pool.usage", "hosts."+hosts[1].Engine+".gpus_reserved", "2"),
					resource.TestCheckResourceAttr("data.berth_pool.usage", "hosts."+hosts[1].Engine+".gpu_ids_held.#", "2"),
					func(s *terraform.State) error {
						held := map[string]string{}
						for i := range 4 {
							address := fmt.Sprintf("berth_container.g.%d", i)
							rs := s.RootModule().Resources[address].Primary.Attributes
							if rs["gpu_ids.#"] != "1" {
								return fmt.Errorf("%s holds %s GPUs, want 1", address, rs["gpu_ids.#"])
							}
							id := rs["gpu_ids.0"]
							if other, taken := held[id]; taken {
								return fmt.Errorf("%s and %s both hold %s", other, address, id)
							}
							held[id] = address
							if !strings.HasPrefix(id, map[string]string{hosts[0].Engine: "GPU-a", hosts[1].Engine: "GPU-b"}[rs["host"]]) {
								return fmt.Errorf("%s on %s holds %s, not one of that host's GPUs", address, rs["host"], id)
							}
							inspected, err := lcDocker(t, env, rs["host"]).ContainerInspect(ctx, rs["container_id"])
							if err != nil {
								return err
							}
							if !slices.Contains(inspected.Config.Env, "NVIDIA_VISIBLE_DEVICES="+id) {
								return fmt.Errorf("%s's environment %v lacks NVIDIA_VISIBLE_DEVICES=%s", address, inspected.Config.Env, id)
							}
						}
						return nil
					}),
			},
			{
				Config:      config(5),
				PlanOnly:    true,
				ExpectError: diagnostic(`no host fits g-4 \(needs 0.1 CPU, 32MiB, 1 GPU\)...gpus 0 free`),
			},
		},
	})
}

// TestAccBerthdVolumes: through berthd, a volume is placed at its create
// and the container that mounts it lands on its host, in the same apply,
// holding one of that host's GPUs; the next plan is empty.
func TestAccBerthdVolumes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	const pool = "pv-remote"
	env := accEnv(t)
	hosts := accHosts(env, 1, "512MiB", 37500)
	for i := range hosts {
		hosts[i].Disk = "1GiB"
		hosts[i].GPUIDs = []string{fmt.Sprintf("gpu-%d", i)}
	}
	b, _ := rmSetup(ctx, t, pool, 26912, hosts)
	ws := newCLIWorkspace(t, env, remoteProviderHCL(b.url(), b.token, "30m")+`
resource "berth_volume" "data" {
  pool = "`+pool+`"
  name = "pv-remote-data"
  size = "700MiB"
}
resource "berth_container" "db" {
  pool   = "`+pool+`"
  name   = "db"
  image  = "`+env.Image+`"
  cpu    = 0.1
  memory = "32MiB"
  gpus   = 1
  mounts = [{ type = "volume", source = berth_volume.data.name, target = "/data" }]
}
output "hosts" { value = [berth_volume.data.host, berth_container.db.host] }
output "gpus" { value = berth_container.db.gpu_ids }
`)
	t.Cleanup(func() { _, _ = ws.run(context.Background(), "destroy", "-auto-approve", "-no-color") })
	if out, err := ws.run(ctx, "apply", "-auto-approve", "-no-color"); err != nil {
		t.Fatalf("apply through berthd: %v\n%s", err, out)
	}
	out, err := ws.run(ctx, "output", "-json", "hosts")
	if err != nil {
		t.Fatalf("terraform output: %v\n%s", err, out)
	}
	var placed []string
	if err := json.Unmarshal([]byte(out), &placed); err != nil || len(placed) != 2 || placed[0] == "" || placed[0] != placed[1] {
		t.Fatalf("volume and container hosts %s (%v): want the same host", out, err)
	}
	usage := b.usage(ctx, pool)
	for _, h := range usage.Hosts {
		here := h.Name == placed[0]
		if want := map[bool]int64{true: 700 << 20}[here]; h.DiskReserved != want {
			t.Errorf("berthd reports %d bytes of disk reserved on %s, want %d", h.DiskReserved, h.Name, want)
		}
		if want := map[bool]int{true: 1}[here]; h.GPUsReserved != want || len(h.GPUIDsHeld) != want {
			t.Errorf("berthd reports GPUs %d reserved (%v) on %s, want %d", h.GPUsReserved, h.GPUIDsHeld, h.Name, want)
		}
	}
	if out, err = ws.run(ctx, "output", "-json", "gpus"); err != nil {
		t.Fatalf("terraform output: %v\n%s", err, out)
	}
	var gpus []string
	if err := json.Unmarshal([]byte(out), &gpus); err != nil || len(gpus) != 1 || !strings.HasPrefix(gpus[0], "gpu-") {
		t.Errorf("db's gpu_ids %s (%v): want one of its host's", out, err)
	}
	if out, err := ws.run(ctx, "plan", "-detailed-exitcode", "-no-color"); err != nil {
		t.Fatalf("plan after apply is not empty: %v\n%s", err, out)
	}
}

// Bad input on berth_volume fails validation or plan, naming the attribute.
func TestAccVolumeBadInput(t *testing.T) {
	t.Parallel()
	env := accEnv(t)
	const pool = "pv-badinput"
	hosts := accHosts(env, 1, "512MiB", 37300)[:1]
	hosts[0].Disk = "1GiB"
	cases := []struct{ attr, want string }{
		{`name = "bad name"`, `name...must be`},
		{"name = \"v\"\n  size = \"lots\"", `Invalid disk size...size..."lots"`},
		{"name = \"v\"\n  size = \"512\"", `Invalid disk size...size..."512" has no unit: write "512MiB"`},
		{"name = \"v\"\n  size = \"2GiB\"", `Volume pv-badinput/v does not fit...size...no host fits v \(needs 2GiB disk\)...disk 1GiB free`},
		{"name = \"v\"\n  labels = { \"sh.berth.pool\" = \"x\" }", `Invalid label...labels..."sh.berth.pool" uses the reserved prefix`},
		{"name = \"v\"\n  driver = \"\"", `driver...length`},
		{"name = \"v\"\n  constraints = [\"zone ==\"]", `constraints`},
		{"name = \"v\"\n  host = \"nowhere\"", `Volume pv-badinput/v does not fit...nowhere`},
	}
	steps := make([]resource.TestStep, len(cases))
	for i, c := range cases {
		steps[i] = resource.TestStep{
			Config:      env.ProviderHCL() + accPool(pool, "spread", hosts) + accVolume("v", pool, c.attr),
			PlanOnly:    true,
			ExpectError: diagnostic(c.want),
		}
	}
	resource.Test(t, resource.TestCase{ProtoV6ProviderFactories: accFactories(), Steps: steps})
}
