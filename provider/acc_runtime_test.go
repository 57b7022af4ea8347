package provider

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
)

// docker_container's settings on berth_container, checked in `docker
// inspect` on the real engines. Pools are named pr-*; host ports stay within
// 36000-36999.

// rtInspect inspects the container of address with a raw Docker client.
func rtInspect(ctx context.Context, t *testing.T, s *terraform.State, address string) (container.InspectResponse, error) {
	host, err := lcAttr(s, address, "host")
	if err != nil {
		return container.InspectResponse{}, err
	}
	id, err := lcAttr(s, address, "container_id")
	if err != nil {
		return container.InspectResponse{}, err
	}
	env := accEnv(t)
	return lcDocker(t, env, host).ContainerInspect(ctx, id)
}

// rtWant compares one inspected value with what the configuration asked.
func rtWant(errs *[]error, what string, got, want any) {
	if !reflect.DeepEqual(got, want) {
		*errs = append(*errs, fmt.Errorf("%s: docker inspect shows %#v, want %#v", what, got, want))
	}
}

func TestAccContainerRuntimeSettings(t *testing.T) {
	t.Parallel()
	env := accEnv(t)
	set := accEngines(t, env)
	const pool = "pr-runtime"
	cleanupPool(t, set, pool)
	const address = "berth_container.web"
	hosts := accHosts(env, 2, "1GiB", 36000)
	for i := range hosts {
		hosts[i].Labels = map[string]string{"zone": "b"}
	}
	hosts[0].Labels["zone"] = "a"
	settings := func(restart, cpuLimit, memoryLimit, constraints string) string {
		return env.ProviderHCL() + accPool(pool, "spread", hosts) +
			lcContainer("web", pool, "web", env.Image,
				`cpu          = 0.2`,
				`memory       = "48MiB"`,
				`cpu_limit    = `+cpuLimit,
				`memory_limit = `+memoryLimit,
				`restart      = "`+restart+`"`,
				`constraints  = `+constraints,
				`entrypoint   = ["/app"]`,
				`command      = ["serve"]`,
				`working_dir  = "/work"`,
				`user         = "1000:1000"`,
				`labels       = { team = "web", tier = "front" }`,
				`log_driver   = "local"`,
				`log_opts     = { max-size = "1m" }`,
				`capabilities = { add = ["NET_ADMIN"], drop = ["MKNOD"] }`,
				`privileged   = true`,
				`read_only    = true`,
				`init         = true`,
				`ulimits      = [{ name = "nofile", soft = 1024, hard = 2048 }]`,
				`sysctls      = { "net.core.somaxconn" = "512" }`,
				`extra_hosts  = ["db.internal:10.1.2.3"]`,
				`dns          = ["10.0.0.2"]`,
				`dns_search   = ["svc.internal"]`,
				`devices      = [{ host_path = "/dev/null", container_path = "/dev/berth-null", permissions = "rw" }]`,
				`shm_size     = "128MiB"`,
				`stop_signal  = "SIGINT"`,
				`stop_timeout = "7s"`,
			)
	}
	first := settings("on-failure", "0.5", `"96MiB"`, `["zone == a", "node.name != nowhere"]`)
	// The same container after in-place edits: restart policy, limits, and
	// rules its host still satisfies (reordered, a preference added).
	edited := settings("always", "1", `"128MiB"`, `["node.name != nowhere", "zone == a", "~zone == b"]`)
	ctx := context.Background()
	var firstID string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: accFactories(),
		Steps: []resource.TestStep{
			{
				Config: first,
				Check: func(s *terraform.State) error {
					c, err := rtInspect(ctx, t, s, address)
					if err != nil {
						return err
					}
					firstID = c.ID
					var errs []error
					rtWant(&errs, "entrypoint", []string(c.Config.Entrypoint), []string{"/app"})
					rtWant(&errs, "command", []string(c.Config.Cmd), []string{"serve"})
					rtWant(&errs, "working_dir", c.Config.WorkingDir, "/work")
					rtWant(&errs, "user", c.Config.User, "1000:1000")
					rtWant(&errs, "labels", []string{c.Config.Labels["team"], c.Config.Labels["tier"]}, []string{"web", "front"})
					rtWant(&errs, "log_driver", c.HostConfig.LogConfig.Type, "local")
					rtWant(&errs, "log_opts", c.HostConfig.LogConfig.Config, map[string]string{"max-size": "1m"})
					rtWant(&errs, "capabilities.add", []string(c.HostConfig.CapAdd), []string{"CAP_NET_ADMIN"}) // Docker adds the prefix
					rtWant(&errs, "capabilities.drop", []string(c.HostConfig.CapDrop), []string{"CAP_MKNOD"})
					rtWant(&errs, "privileged", c.HostConfig.Privileged, true)
					rtWant(&errs, "read_only", c.HostConfig.ReadonlyRootfs, true)
					rtWant(&errs, "init", c.HostConfig.Init != nil && *c.HostConfig.Init, true)
					if len(c.HostConfig.Ulimits) != 1 {
						errs = append(errs, fmt.Errorf("ulimits: %v", c.HostConfig.Ulimits))
					} else {
						u := c.HostConfig.Ulimits[0]
						rtWant(&errs, "ulimits", []any{u.Name, u.Soft, u.Hard}, []any{"nofile", int64(1024), int64(2048)})
					}
					rtWant(&errs, "sysctls", c.HostConfig.Sysctls, map[string]string{"net.core.somaxconn": "512"})
					rtWant(&errs, "extra_hosts", c.HostConfig.ExtraHosts, []string{"db.internal:10.1.2.3"})
					rtWant(&errs, "dns", c.HostConfig.DNS, []string{"10.0.0.2"})
					rtWant(&errs, "dns_search", c.HostConfig.DNSSearch, []string{"svc.internal"})
					rtWant(&errs, "devices", c.HostConfig.Devices, []container.DeviceMapping{{PathOnHost: "/dev/null", PathInContainer: "/dev/berth-null", CgroupPermissions: "rw"}})
					rtWant(&errs, "shm_size", c.HostConfig.ShmSize, int64(128<<20))
					rtWant(&errs, "stop_signal", c.Config.StopSignal, "SIGINT")
					rtWant(&errs, "stop_timeout", c.Config.StopTimeout != nil && *c.Config.StopTimeout == 7, true)
					rtWant(&errs, "restart", string(c.HostConfig.RestartPolicy.Name), "on-failure")
					rtWant(&errs, "cpu_limit", c.HostConfig.NanoCPUs, int64(500_000_000))
					rtWant(&errs, "cpu (shares)", c.HostConfig.CPUShares, int64(205))
					rtWant(&errs, "memory_limit", c.HostConfig.Memory, int64(96<<20))
					rtWant(&errs, "memory (reservation)", c.HostConfig.MemoryReservation, int64(48<<20))
					rtWant(&errs, "running", c.State.Running, true)
					if len(errs) > 0 {
						return fmt.Errorf("%v", errs)
					}
					return nil
				},
			},
			{
				Config:            first,
				ResourceName:      address,
				ImportState:       true,
				ImportStateId:     pool + "/web",
				ImportStateVerify: true,
				// Provider-side settings, never written to the engine.
				ImportStateVerifyIgnore: []string{"timeouts"},
			},
			{
				Config: edited,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(address, plancheck.ResourceActionUpdate),
				}},
				Check: func(s *terraform.State) error {
					c, err := rtInspect(ctx, t, s, address)
					if err != nil {
						return err
					}
					var errs []error
					rtWant(&errs, "same container", c.ID, firstID)
					rtWant(&errs, "restart", string(c.HostConfig.RestartPolicy.Name), "always")
					rtWant(&errs, "cpu_limit", c.HostConfig.NanoCPUs, int64(1_000_000_000))
					rtWant(&errs, "memory_limit", c.HostConfig.Memory, int64(128<<20))
					rtWant(&errs, "memory (reservation)", c.HostConfig.MemoryReservation, int64(48<<20))
					if len(errs) > 0 {
						return fmt.Errorf("%v", errs)
					}
					return nil
				},
			},
			{
				// A rule the host no longer satisfies moves the container.
				Config: settings("always", "1", `"128MiB"`, `["zone == b"]`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(address, plancheck.ResourceActionDestroyBeforeCreate),
				}},
				Check: resource.TestCheckResourceAttrWith(address, "host", func(host string) error {
					if host == hosts[0].Engine {
						return fmt.Errorf("still on %s, which is in zone a", host)
					}
					return nil
				}),
			},
		},
	})
}

// Bad input on every docker_container setting fails validation or plan,
// naming the attribute.
func TestAccContainerRuntimeBadInput(t *testing.T) {
	t.Parallel()
	env := accEnv(t)
	const pool = "pr-badinput"
	config := func(attr string) string {
		return env.ProviderHCL() + accPool(pool, "spread", accHosts(env, 1, "512MiB", 36500)) +
			lcContainer("web", pool, "web", env.Image, attr)
	}
	cases := []struct{ attr, want string }{
		{`entrypoint = []`, `entrypoint...at least 1`},
		{`working_dir = "work"`, `Invalid path...working_dir..."work" is not an absolute path`},
		{`user = "app user"`, `user...must be a user name or id`},
		{`labels = { "sh.berth.pool" = "x" }`, `Invalid label...labels..."sh.berth.pool" uses the reserved prefix`},
		{`log_driver = "json file"`, `log_driver...must be a Docker logging driver name`},
		{`log_opts = { "" = "x" }`, `log_opts...length`},
		{`capabilities = { add = ["NET ADMIN"] }`, `capabilities.add...must be a Linux capability`},
		{`privileged = "maybe"`, `privileged...bool`},
		{`read_only = "maybe"`, `read_only...bool`},
		{`init = "maybe"`, `init...bool`},
		{`ulimits = [{ name = "nofiles", soft = 1, hard = 2 }]`, `Invalid ulimit...ulimits\[0\].name...nofiles`},
		{`ulimits = [{ name = "nofile", soft = 4096, hard = 1024 }]`, `Invalid ulimit...ulimits\[0\].soft...soft limit`},
		{`sysctls = { somaxconn = "1" }`, `sysctls...must be a dotted kernel parameter`},
		{`extra_hosts = ["db.internal"]`, `Invalid extra host...extra_hosts...is not NAME:IP`},
		{`extra_hosts = ["db:10.0.0.300"]`, `Invalid extra host...extra_hosts..."10.0.0.300" is not an IP address`},
		{`dns = ["dns.google"]`, `Invalid IP address...dns..."dns.google" is not an IP address`},
		{`dns_search = ["not a domain"]`, `dns_search...must be a domain name`},
		{`devices = [{ host_path = "dev/fuse" }]`, `Invalid path...devices\[0\].host_path`},
		{`devices = [{ host_path = "/dev/fuse", permissions = "rx" }]`, `devices\[0\].permissions...must be made of r`},
		{`shm_size = "lots"`, `Invalid size...shm_size..."lots"`},
		{`stop_signal = "SIGNOPE"`, `Invalid stop signal...stop_signal...SIGNOPE`},
		{`stop_timeout = "soon"`, `Invalid duration...stop_timeout`},
		{`memory_limit = "64MiB"` + "\n  memory = \"128MiB\"", `Memory limit below the reservation...memory_limit...is less than memory`},
		{`cpu_limit = 0.1` + "\n  cpu = 0.5", `CPU limit below the reservation...cpu_limit = 0.1 is less than cpu = 0.5`},
		{`restart = "sometimes"`, `restart...value must be one of`},
		{`ports = [{ internal = 80, ip = "localhost" }]`, `Invalid IP address...ports\[0\].ip..."localhost" is not an IP address`},
		{`mounts = [{ type = "bind", target = "/data" }]`, `Bind mount without a source...mounts\[0\]`},
		{`mounts = [{ type = "tmpfs", source = "/x", target = "/t" }]`, `A tmpfs mount has no source...mounts\[0\].source`},
		{`mounts = [{ type = "bind", source = "/x", target = "/t", size = "1MiB" }]`, `Not a tmpfs mount...mounts\[0\].size`},
		{`mounts = [{ type = "nfs", target = "/t" }]`, `mounts\[0\].type...value must be one of`},
		{`mounts = [{ type = "tmpfs", target = "t" }]`, `Invalid path...mounts\[0\].target`},
		{`mounts = [{ type = "tmpfs", target = "/t", mode = "999" }]`, `Invalid mode...mounts\[0\].mode..."999" is not octal`},
		{`mounts = [{ type = "tmpfs", target = "/t" }, { type = "tmpfs", target = "/t" }]`, `Duplicate mount target...mounts\[1\].target`},
		{`mounts = [{ type = "bind", source = "srv", target = "/t" }]`, `Invalid path...mounts\[0\].source..."srv" is not an absolute path`},
		{`mounts = [{ type = "volume", target = "/t" }]`, `Volume mount without a source...mounts\[0\].source...berth_volume`},
		{`mounts = [{ type = "volume", source = "/srv", target = "/t" }]`, `Invalid volume name...mounts\[0\].source..."/srv" is not a volume name`},
		{`mounts = [{ type = "volume", source = "data", target = "/t", mode = "0700" }]`, `Not a tmpfs mount...mounts\[0\].mode`},
		{`mounts = [{ type = "volume", source = "nope", target = "/t" }]`, `mounts volume "nope", which pool pr-badinput does not have...berth_volume`},
		{`gpus = 0`, `gpus...must be between 1 and 64`},
	}
	steps := make([]resource.TestStep, len(cases), len(cases)+1)
	for i, c := range cases {
		steps[i] = resource.TestStep{Config: config(c.attr), PlanOnly: true, ExpectError: diagnostic(c.want)}
	}
	badAddress := fmt.Sprintf("provider \"berth\" {\n  engines = { %s = { endpoint = %q, address = \"not an address\" } }\n}\n",
		env.Engines[0].Name, env.Engines[0].Endpoint)
	steps = append(steps, resource.TestStep{
		Config:      badAddress + accPool(pool, "spread", accHosts(env, 1, "512MiB", 36500)[:1]),
		PlanOnly:    true,
		ExpectError: diagnostic(`Invalid address...engines\["` + env.Engines[0].Name + `"\].address..."not an address" is neither a host name nor an IP address`),
	})
	resource.Test(t, resource.TestCase{ProtoV6ProviderFactories: accFactories(), Steps: steps})
}

// Published ports say where to connect: a port bound to one interface is
// reached there, the others at the engine's address from the provider block.
func TestAccContainerAddresses(t *testing.T) {
	t.Parallel()
	env := accEnv(t)
	set := accEngines(t, env)
	const pool = "pr-address"
	cleanupPool(t, set, pool)
	node := env.Engines[0]
	const address = "berth_container.web"
	config := fmt.Sprintf("provider \"berth\" {\n  engines = {\n    %s = { endpoint = %q, address = \"localhost\" }\n  }\n}\n",
		node.Name, node.Endpoint) +
		accPool(pool, "spread", []accPoolHost{{Engine: node.Name, CPU: 1, Memory: "512MiB", PortMin: 36600}}) +
		lcContainer("web", pool, "web", env.Image,
			`env   = { PORT = "8080", MESSAGE = "reached" }`,
			`ports = [{ internal = 8080, ip = "127.0.0.1" }, { internal = 9090 }]`,
		)
	ctx := context.Background()
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: accFactories(),
		Steps: []resource.TestStep{
			{
				Config: config,
				Check: func(s *terraform.State) error {
					attrs := s.RootModule().Resources[address].Primary.Attributes
					var errs []error
					rtWant(&errs, "address", attrs["address"], "localhost")
					rtWant(&errs, "published_ports.0.ip", attrs["published_ports.0.ip"], "127.0.0.1")
					rtWant(&errs, "published_ports.0.address", attrs["published_ports.0.address"], "127.0.0.1:"+attrs["published_ports.0.external"])
					rtWant(&errs, "published_ports.1.ip", attrs["published_ports.1.ip"], "")
					rtWant(&errs, "published_ports.1.address", attrs["published_ports.1.address"], "localhost:"+attrs["published_ports.1.external"])
					c, err := rtInspect(ctx, t, s, address)
					if err != nil {
						return err
					}
					if !strings.HasPrefix(c.Image, "sha256:") {
						errs = append(errs, fmt.Errorf("docker inspect shows image %q, not an image ID", c.Image))
					}
					rtWant(&errs, "image_id", attrs["image_id"], c.Image)
					for port, ip := range map[string]string{"8080/tcp": "127.0.0.1", "9090/tcp": ""} {
						bindings := c.HostConfig.PortBindings[nat.Port(port)]
						if len(bindings) != 1 || bindings[0].HostIP != ip {
							errs = append(errs, fmt.Errorf("port %s bound as %+v, want host IP %q", port, bindings, ip))
						}
					}
					if body, err := httpGet(ctx, "http://"+attrs["published_ports.0.address"]+"/"); err != nil || !strings.Contains(body, "message=reached") {
						errs = append(errs, fmt.Errorf("GET published_ports.0.address: %q, %w", body, err))
					}
					if len(errs) > 0 {
						return fmt.Errorf("%v", errs)
					}
					return nil
				},
			},
			{
				Config:                  config,
				ResourceName:            address,
				ImportState:             true,
				ImportStateId:           pool + "/web",
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"timeouts", "ports.0.external", "ports.1.external"},
			},
		},
	})
}

// httpGet fetches url, within a few seconds, and returns the body.
func httpGet(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(body), err
}

// Bind and tmpfs mounts are what the container sees; a bind source missing
// on the host fails the create, naming the host and the path.
func TestAccContainerMounts(t *testing.T) {
	t.Parallel()
	env := accEnv(t)
	set := accEngines(t, env)
	const pool = "pr-mounts"
	cleanupPool(t, set, pool)
	// The local engines share this machine's filesystem, as a host's
	// engine shares its host's.
	source := t.TempDir()
	if err := os.WriteFile(filepath.Join(source, "hello.txt"), []byte("from the host"), 0o644); err != nil {
		t.Fatal(err)
	}
	node := env.Engines[0].Name
	const address = "berth_container.web"
	config := func(source string) string {
		return env.ProviderHCL() + accPool(pool, "spread", accHosts(env, 1, "512MiB", 36700)) +
			lcContainer("web", pool, "web", env.Image,
				`host   = "`+node+`"`,
				`ports  = [{ internal = 8080 }]`,
				`mounts = [`,
				`  { type = "bind", source = "`+source+`", target = "/data", read_only = true },`,
				`  { type = "tmpfs", target = "/scratch", size = "16MiB", mode = "0700" },`,
				`]`,
			)
	}
	ctx := context.Background()
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: accFactories(),
		Steps: []resource.TestStep{
			{
				Config: config(source),
				Check: func(s *terraform.State) error {
					base := "http://" + s.RootModule().Resources[address].Primary.Attributes["published_ports.0.address"]
					var errs []error
					get := func(what, path, want string, ok bool) {
						body, err := httpGet(ctx, base+path)
						if (err == nil) != ok || !strings.Contains(body, want) {
							errs = append(errs, fmt.Errorf("%s: GET %s answered %q, %w", what, path, body, err))
						}
					}
					get("bind mount", "/file?path=/data/hello.txt", "from the host", true)
					get("read-only bind", "/write?path=/data/new.txt&content=x", "read-only file system", false)
					get("tmpfs writable", "/write?path=/scratch/y&content=in+memory", "written", true)
					get("tmpfs file", "/file?path=/scratch/y", "in memory", true)
					get("tmpfs options", "/file?path=/proc/mounts", "/scratch tmpfs", true)
					get("tmpfs size", "/file?path=/proc/mounts", "size=16384k", true)
					get("tmpfs mode", "/file?path=/proc/mounts", "mode=700", true)
					if _, err := os.Stat(filepath.Join(source, "new.txt")); err == nil {
						errs = append(errs, fmt.Errorf("a read-only bind mount was written through"))
					}
					if len(errs) > 0 {
						return fmt.Errorf("%v", errs)
					}
					return nil
				},
			},
			{
				Config:                  config(source),
				ResourceName:            address,
				ImportState:             true,
				ImportStateId:           pool + "/web",
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"timeouts", "ports.0.external"},
			},
			{
				Config:      config("/nonexistent/berth-source"),
				ExpectError: diagnostic(`engine ` + node + `...bind source path does not exist: /nonexistent/berth-source`),
			},
		},
	})
}
