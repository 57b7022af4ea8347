package provider

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/internal/testenv"
)

// Shared pieces of the acceptance tests: real Terraform, real engines
// (started by `make test` or `make engines-up`).

// accEnv returns the running test engines. Acceptance tests never skip:
// without TF_ACC or engines they fail and say how to get them.
func accEnv(t *testing.T) *testenv.Env {
	t.Helper()
	if os.Getenv("TF_ACC") == "" {
		t.Fatal("acceptance test needs TF_ACC=1 and running engines: run `make test` (or `make engines-up` then `make testacc`)")
	}
	return testenv.Require(t)
}

// accFactories serves the real provider, with the embedded backend, inside
// the test process; each Terraform command gets a new provider instance.
func accFactories() map[string]func() (tfprotov6.ProviderServer, error) {
	return map[string]func() (tfprotov6.ProviderServer, error){
		"berth": NewServer(New("acctest")),
	}
}

// accPoolHost describes one member of a test pool. Every test uses its
// own port range: all local engines publish on the same 127.0.0.1.
type accPoolHost struct {
	Engine     string
	Labels     map[string]string
	CPU        float64
	Memory     string
	PortMin    int
	PortCount  int      // size of port_range; 0 means 100
	MaxPerHost int      // max_containers; 0 leaves it out
	Disk       string   // disk; "" leaves it out
	GPUIDs     []string // gpu_ids; nil leaves it out
}

// accPool renders a berth_pool resource named like the pool.
func accPool(name, strategy string, hosts []accPoolHost) string {
	var b strings.Builder
	fmt.Fprintf(&b, "resource \"berth_pool\" %q {\n  name = %q\n  strategy = %q\n  hosts = {\n", name, name, strategy)
	for _, h := range hosts {
		ports := h.PortCount
		if ports == 0 {
			ports = 100
		}
		fmt.Fprintf(&b, "    %s = {\n      cpu = %g\n      memory = %q\n      port_range = \"%d-%d\"\n", h.Engine, h.CPU, h.Memory, h.PortMin, h.PortMin+ports-1)
		if h.MaxPerHost > 0 {
			fmt.Fprintf(&b, "      max_containers = %d\n", h.MaxPerHost)
		}
		if h.Disk != "" {
			fmt.Fprintf(&b, "      disk = %q\n", h.Disk)
		}
		if h.GPUIDs != nil {
			fmt.Fprintf(&b, "      gpu_ids = [\"%s\"]\n", strings.Join(h.GPUIDs, `", "`))
		}
		if len(h.Labels) > 0 {
			keys := make([]string, 0, len(h.Labels))
			for k := range h.Labels {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			b.WriteString("      labels = {")
			for _, k := range keys {
				fmt.Fprintf(&b, " %s = %q,", k, h.Labels[k])
			}
			b.WriteString(" }\n")
		}
		b.WriteString("    }\n")
	}
	b.WriteString("  }\n}\n")
	return b.String()
}

// accHosts gives every test engine the same capacity, with port ranges of
// 100 ports each starting at portBase.
func accHosts(env *testenv.Env, cpu float64, memory string, portBase int) []accPoolHost {
	hosts := make([]accPoolHost, len(env.Engines))
	for i, e := range env.Engines {
		hosts[i] = accPoolHost{Engine: e.Name, CPU: cpu, Memory: memory, PortMin: portBase + 100*i}
	}
	return hosts
}

// accEngines opens the test engines directly, to check what Terraform did.
func accEngines(t *testing.T, env *testenv.Env) *engine.Set {
	t.Helper()
	cfgs := make([]engine.Config, 0, len(env.Engines))
	for _, e := range env.Engines {
		cfgs = append(cfgs, engine.Config{Name: e.Name, Endpoint: e.Socket})
	}
	set, err := engine.NewSet(cfgs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Close() })
	return set
}

// poolContainers lists the pool's containers per engine.
func poolContainers(ctx context.Context, set *engine.Set, pool string) (map[string][]engine.Container, error) {
	out := map[string][]engine.Container{}
	for _, name := range set.Names() {
		eng, err := set.Get(name)
		if err != nil {
			return nil, err
		}
		listed, err := eng.ListContainers(ctx, pool)
		if err != nil {
			return nil, err
		}
		out[name] = listed
	}
	return out, nil
}

// cleanupPool removes whatever a failed test left of a pool: containers
// first, then volumes and records, so later tests and runs start clean.
func cleanupPool(t *testing.T, set *engine.Set, pool string) {
	t.Helper()
	t.Cleanup(func() {
		ctx := context.Background()
		for _, name := range set.Names() {
			eng, err := set.Get(name)
			if err != nil {
				continue
			}
			listed, _ := eng.ListContainers(ctx, pool)
			for _, c := range listed {
				_ = eng.Remove(ctx, c.ID)
			}
			volumes, _ := eng.ListVolumes(ctx, pool)
			for _, v := range volumes {
				_ = eng.RemoveVolume(ctx, v.Name)
			}
			_ = eng.DeletePoolRecord(ctx, pool)
		}
	})
}

// cliWorkspace is a directory where the real Terraform CLI runs the real
// provider binary, as users run it: one process per command.
type cliWorkspace struct {
	t   *testing.T
	env *testenv.Env
	dir string
	rc  string
}

// newCLIWorkspace builds the provider binary and points Terraform at it
// with a dev override, so no registry is involved.
func newCLIWorkspace(t *testing.T, env *testenv.Env, config string) *cliWorkspace {
	t.Helper()
	return newCLIWorkspaceWith(t, env, buildProvider(t, env), config)
}

// buildProvider builds the provider binary into a directory of its own,
// which workspaces made with newCLIWorkspaceWith share.
func buildProvider(t *testing.T, env *testenv.Env) string {
	t.Helper()
	if env.TerraformPath == "" {
		t.Fatal("TF_ACC_TERRAFORM_PATH is not set: run `make engines-up` and source its engines.env")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "terraform-provider-berth"), "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the provider: %v\n%s", err, out)
	}
	return bin
}

// newCLIWorkspaceWith is newCLIWorkspace with the provider binary built in bin.
func newCLIWorkspaceWith(t *testing.T, env *testenv.Env, bin, config string) *cliWorkspace {
	t.Helper()
	dir := t.TempDir()
	rc := filepath.Join(dir, "terraformrc")
	rcText := fmt.Sprintf("provider_installation {\n  dev_overrides { \"registry.terraform.io/berthsh/berth\" = %q }\n  direct {}\n}\n", bin)
	if err := os.WriteFile(rc, []byte(rcText), 0o600); err != nil {
		t.Fatal(err)
	}
	w := &cliWorkspace{t: t, env: env, dir: dir, rc: rc}
	w.write(config)
	return w
}

// write replaces the workspace's configuration.
func (w *cliWorkspace) write(config string) {
	w.t.Helper()
	text := "terraform {\n  required_providers {\n    berth = { source = \"berthsh/berth\" }\n  }\n}\n" + config
	if err := os.WriteFile(filepath.Join(w.dir, "main.tf"), []byte(text), 0o600); err != nil {
		w.t.Fatal(err)
	}
}

// command prepares a Terraform command in the workspace.
func (w *cliWorkspace) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, w.env.TerraformPath, args...)
	cmd.Dir = w.dir
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+w.rc, "TF_IN_AUTOMATION=1", "TF_INPUT=0", "NO_COLOR=1", "CHECKPOINT_DISABLE=1")
	return cmd
}

// run runs Terraform and returns its combined output and error.
func (w *cliWorkspace) run(ctx context.Context, args ...string) (string, error) {
	out, err := w.command(ctx, args...).CombinedOutput()
	return string(out), err
}
