package provider

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/internal/testenv"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

// Images from a local registry with htpasswd auth, pinned by digest across
// hosts. Pools are named pi-*; host ports 38300-38799, berthd on 26910,
// registries on 127.0.0.1:38990-38995 (each test its own two ports).

// imProvider is the test engines' provider block with registryAuth (HCL
// entries, "" for none) added.
func imProvider(env *testenv.Env, registryAuth string) string {
	block := env.ProviderHCL()
	if registryAuth == "" {
		return block
	}
	return strings.TrimSuffix(block, "}\n") + "  registry_auth = [" + registryAuth + "]\n}\n"
}

// imDockerConfig writes a Docker config file holding the registry's
// credentials, as `docker login` would.
func imDockerConfig(t *testing.T, r *testenv.Registry) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	auth := base64.StdEncoding.EncodeToString([]byte(r.Username + ":" + r.Password))
	if err := os.WriteFile(path, fmt.Appendf(nil, `{"auths": {%q: {"auth": %q}}}`, r.Addr, auth), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAccImagesPinnedByDigestAcrossHosts(t *testing.T) {
	t.Parallel()
	env := accEnv(t)
	set := accEngines(t, env)
	const pool = "pi-images"
	cleanupPool(t, set, pool)
	ctx := context.Background()
	registry := testenv.StartRegistry(t, 38990, 38991)
	image := registry.Addr + "/berth/app:v1"
	first := registry.Push(ctx, t, env.Engines[0], env.Image, "berth/app:v1", "1")
	var second string

	hosts := accHosts(env, 2, "1GiB", 38300)
	containers := func(trigger string, extra ...string) string {
		var b strings.Builder
		b.WriteString(accPool(pool, "spread", hosts))
		for i := range len(env.Engines) {
			b.WriteString(lcContainer(fmt.Sprintf("app%d", i), pool, fmt.Sprintf("app-%d", i), image,
				`memory        = "32MiB"`,
				`spread_group  = "app"`,
				`pull_triggers = ["`+trigger+`"]`))
		}
		for _, name := range extra {
			b.WriteString(lcContainer(name, pool, name, image, `memory = "32MiB"`))
		}
		return b.String()
	}
	password := fmt.Sprintf(`{ address = %q, username = %q, password = %q }`, registry.Addr, registry.Username, registry.Password)
	wrong := fmt.Sprintf(`{ address = %q, username = %q, password = "not-the-password" }`, registry.Addr, registry.Username)
	configFile := fmt.Sprintf(`{ address = "http://%s", config_file = %q }`, registry.Addr, imDockerConfig(t, registry))

	// everyHostRuns checks that each container runs digest (in state and in
	// docker inspect, the same image on every host) on its own host.
	everyHostRuns := func(digest *string) resource.TestCheckFunc {
		return func(s *terraform.State) error {
			seenHosts := map[string]bool{}
			imageIDs := map[string]bool{}
			for i := range len(env.Engines) {
				address := fmt.Sprintf("berth_container.app%d", i)
				state, _ := lcAttr(s, address, "repo_digest")
				if state != *digest {
					return fmt.Errorf("%s: repo_digest %q, want %q", address, state, *digest)
				}
				c, err := rtInspect(ctx, t, s, address)
				if err != nil {
					return err
				}
				if c.Config.Image != *digest || c.Config.Labels[engine.LabelImage] != image {
					return fmt.Errorf("%s: docker inspect: created from %q (label %q), want %q (configured %q)",
						address, c.Config.Image, c.Config.Labels[engine.LabelImage], *digest, image)
				}
				if stateID, _ := lcAttr(s, address, "image_id"); stateID != c.Image {
					return fmt.Errorf("%s: image_id %q, docker inspect %q", address, stateID, c.Image)
				}
				host, _ := lcAttr(s, address, "host")
				seenHosts[host] = true
				imageIDs[c.Image] = true
			}
			if len(seenHosts) != len(env.Engines) || len(imageIDs) != 1 {
				return fmt.Errorf("want one container per host (%v) all running one image (%v)", seenHosts, imageIDs)
			}
			return nil
		}
	}
	replaced := func() []plancheck.PlanCheck {
		var checks []plancheck.PlanCheck
		for i := range len(env.Engines) {
			checks = append(checks, plancheck.ExpectResourceAction(fmt.Sprintf("berth_container.app%d", i), plancheck.ResourceActionDestroyBeforeCreate))
		}
		return checks
	}
	refused := regexp.QuoteMeta(image) + `...look up its digest at registry ` + regexp.QuoteMeta(registry.Addr)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: accFactories(),
		Steps: []resource.TestStep{
			{
				Config: imProvider(env, password) + containers("release-1"),
				Check:  everyHostRuns(&first),
			},
			{
				// A new image under the same tag changes nothing by itself.
				PreConfig: func() { second = registry.Push(ctx, t, env.Engines[0], env.Image, "berth/app:v1", "2") },
				Config:    imProvider(env, password) + containers("release-1"),
				PlanOnly:  true,
			},
			{
				// pull_triggers moves every host to the new digest; the
				// credentials come from a Docker config file this time.
				Config:           imProvider(env, configFile) + containers("release-2"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: replaced()},
				Check:            everyHostRuns(&second),
			},
			{
				// Import restores image, pull_triggers and repo_digest.
				Config:                  imProvider(env, configFile) + containers("release-2"),
				ResourceName:            "berth_container.app0",
				ImportState:             true,
				ImportStateId:           pool + "/app-0",
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"timeouts"},
			},
			{
				Config:      imProvider(env, wrong) + containers("release-2", "extra"),
				ExpectError: diagnostic(`Cannot create container pi-images/extra...` + refused + ` as user "berth"...unauthorized`),
			},
			{
				Config:      imProvider(env, "") + containers("release-2", "extra"),
				ExpectError: diagnostic(`Cannot create container pi-images/extra...` + refused + `, without credentials: if it needs them, give them with registry_auth`),
			},
		},
	})
}

// One provider instance (one apply) resolves a tag once: a push between
// two creates does not split them across digests; the next instance sees
// the new digest.
func TestAccImageResolvedOncePerProviderInstance(t *testing.T) {
	t.Parallel()
	env := accEnv(t)
	set := accEngines(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	registry := testenv.StartRegistry(t, 38992, 38993)
	first := registry.Push(ctx, t, env.Engines[0], env.Image, "berth/once:v1", "1")
	auth := &engine.RegistryAuth{ServerAddress: registry.Addr, Username: registry.Username, Password: registry.Password}
	be := backend.NewEmbedded(set)
	request := func(host string) backend.ImageRequest {
		return backend.ImageRequest{Pool: "pi-once", Host: host, Image: registry.Addr + "/berth/once:v1", RegistryAuth: auth}
	}
	var apply imageDigests
	got, err := apply.resolve(ctx, be, request(env.Engines[1].Name))
	if err != nil || got != first {
		t.Fatalf("first create: %q, %v; want %s", got, err, first)
	}
	second := registry.Push(ctx, t, env.Engines[0], env.Image, "berth/once:v1", "2")
	if got, err := apply.resolve(ctx, be, request(env.Engines[2].Name)); err != nil || got != first {
		t.Fatalf("a later create of the same apply on another host: %q, %v; want the apply's %s", got, err, first)
	}
	var next imageDigests
	if got, err := next.resolve(ctx, be, request(env.Engines[2].Name)); err != nil || got != second {
		t.Fatalf("the next apply: %q, %v; want the new %s", got, err, second)
	}
}

// In remote mode berthd resolves and pulls with its own registry
// credentials (--registry-auth); the provider block holds none.
func TestAccBerthdImagesWithItsOwnRegistryAuth(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	env := accEnv(t)
	set := accEngines(t, env)
	const pool = "pi-remote"
	cleanupPool(t, set, pool)
	registry := testenv.StartRegistry(t, 38994, 38995)
	image := registry.Addr + "/berth/remote:v1"
	pushed := registry.Push(ctx, t, env.Engines[0], env.Image, "berth/remote:v1", "1")
	registries := filepath.Join(t.TempDir(), "registries.json")
	if err := os.WriteFile(registries, fmt.Appendf(nil, `[{"address": %q, "username": %q, "password": %q}]`,
		registry.Addr, registry.Username, registry.Password), 0o600); err != nil {
		t.Fatal(err)
	}
	b := startBerthd(t, env, 26910, "--registry-auth", registries)
	provider := remoteProviderHCL(b.url(), b.token, "30m")
	owner := newCLIWorkspace(t, env, provider+accPool(pool, "spread", accHosts(env, 1, "512MiB", 38600)))
	t.Cleanup(func() { _, _ = owner.run(context.Background(), "destroy", "-auto-approve", "-no-color") })
	if out, err := owner.run(ctx, "apply", "-auto-approve", "-no-color"); err != nil {
		t.Fatalf("applying the pool through berthd: %v\n%s", err, out)
	}
	ws := newCLIWorkspace(t, env, provider+ccContainers("img", pool, image, len(env.Engines), `memory = "32MiB"`, `spread_group = "img"`))
	t.Cleanup(func() { _, _ = ws.run(context.Background(), "destroy", "-auto-approve", "-no-color") })
	if out, err := ws.run(ctx, "apply", "-auto-approve", "-no-color"); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	for host, cs := range ccOnEngines(ctx, t, set, pool, set.Names()...) {
		if len(cs) != 1 || cs[0].RepoDigest != pushed || cs[0].Image != image {
			t.Errorf("%s runs %+v, want one container of %s created from %s", host, cs, image, pushed)
		}
	}
	for i := range len(env.Engines) {
		out, err := ws.run(ctx, "state", "show", "-no-color", fmt.Sprintf("berth_container.img%d", i))
		recorded := regexp.MustCompile(`repo_digest\s+= "` + regexp.QuoteMeta(pushed) + `"`)
		if err != nil || !recorded.MatchString(out) {
			t.Errorf("state of img%d does not record repo_digest %s (%v):\n%s", i, pushed, err, out)
		}
	}
	if code, out := ccExitCode(ctx, t, ws, "plan", "-detailed-exitcode", "-no-color"); code != 0 {
		t.Errorf("plan after apply exited %d, want 0 (no changes):\n%s", code, out)
	}
}
