package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

// rmPlannedHosts reads a saved plan: container name -> the host it shows,
// failing the test for any container whose host is not known.
func rmPlannedHosts(ctx context.Context, t *testing.T, ws *cliWorkspace, planFile string) map[string]string {
	t.Helper()
	out, err := ws.command(ctx, "show", "-json", "-no-color", planFile).Output()
	if err != nil {
		t.Fatalf("terraform show -json %s: %v", planFile, err)
	}
	var plan struct {
		ResourceChanges []struct {
			Type   string `json:"type"`
			Change struct {
				Actions      []string       `json:"actions"`
				After        map[string]any `json:"after"`
				AfterUnknown map[string]any `json:"after_unknown"`
			} `json:"change"`
		} `json:"resource_changes"`
	}
	if err := json.Unmarshal(out, &plan); err != nil {
		t.Fatalf("plan JSON: %v", err)
	}
	hosts := map[string]string{}
	for _, rc := range plan.ResourceChanges {
		if rc.Type != "berth_container" {
			continue
		}
		name := fmt.Sprint(rc.Change.After["name"])
		host, _ := rc.Change.After["host"].(string)
		if unknown, _ := rc.Change.AfterUnknown["host"].(bool); unknown || host == "" {
			t.Errorf("plan: %s (%v) shows no host", name, rc.Change.Actions)
			continue
		}
		hosts[name] = host
	}
	return hosts
}

// rmByName indexes the engines' containers: name -> hosts holding one.
func rmByName(onEngines map[string][]engine.Container) map[string][]string {
	byName := map[string][]string{}
	for host, cs := range onEngines {
		for _, c := range cs {
			byName[c.Name] = append(byName[c.Name], host)
		}
	}
	return byName
}

// rmCheckLedger checks that berthd's ledger matches the engines: no lease
// is left held (each one is bound to its container or gone), and per host
// berthd counts exactly the containers and resources the engines hold.
func rmCheckLedger(ctx context.Context, t *testing.T, b *berthdProc, pool string, onEngines map[string][]engine.Container) {
	t.Helper()
	for _, l := range b.heldLeases(ctx, pool) {
		t.Errorf("lease %s of %s on %s is still held, with no container", l.ID, l.Name, l.Host)
	}
	for _, h := range b.usage(ctx, pool).Hosts {
		var want backend.Resources
		for _, c := range onEngines[h.Name] {
			want.MilliCPU += c.MilliCPU
			want.MemoryBytes += c.MemoryBytes
		}
		if h.Containers != len(onEngines[h.Name]) || h.Reserved != want {
			t.Errorf("berthd counts %d containers and %+v on %s; the engines hold %d and %+v",
				h.Containers, h.Reserved, h.Name, len(onEngines[h.Name]), want)
		}
	}
}

// rmSetup starts berthd and applies a pool through it from an admin
// workspace; the pool is destroyed at the end.
func rmSetup(ctx context.Context, t *testing.T, pool string, port int, hosts []accPoolHost) (*berthdProc, *engine.Set) {
	t.Helper()
	env := accEnv(t)
	set := accEngines(t, env)
	cleanupPool(t, set, pool)
	b := startBerthd(t, env, port)
	owner := newCLIWorkspace(t, env, remoteProviderHCL(b.url(), b.token, "30m")+accPool(pool, "spread", hosts))
	t.Cleanup(func() { _, _ = owner.run(context.Background(), "destroy", "-auto-approve", "-no-color") })
	if out, err := owner.run(ctx, "apply", "-auto-approve", "-no-color"); err != nil {
		t.Fatalf("applying the pool through berthd: %v\n%s", err, out)
	}
	return b, set
}

// Plan, then apply that plan: every host is known at plan, each container
// lands where the plan said, and a new plan is empty; a resize then
// happens in place.
func TestAccBerthdPlanShowsHosts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	const pool = "pr-plan"
	b, set := rmSetup(ctx, t, pool, 26900, accHosts(accEnv(t), 1, "512MiB", 34500))
	env := accEnv(t)

	ws := newCLIWorkspace(t, env, remoteProviderHCL(b.url(), b.token, "30m")+
		ccContainers("w", pool, env.Image, 6, `cpu = 0.25`, `memory = "32MiB"`, `ports = [{ internal = 8080 }]`))
	t.Cleanup(func() { _, _ = ws.run(context.Background(), "destroy", "-auto-approve", "-no-color") })
	if out, err := ws.run(ctx, "plan", "-out=tfplan", "-no-color"); err != nil {
		t.Fatalf("plan: %v\n%s", err, out)
	}
	planned := rmPlannedHosts(ctx, t, ws, "tfplan")
	if len(planned) != 6 {
		t.Fatalf("plan shows hosts for %d of 6 containers: %v", len(planned), planned)
	}
	perHost := map[string]int{}
	for _, host := range planned {
		perHost[host]++
	}
	t.Logf("planned: %v", planned)
	for _, e := range set.Names() {
		if perHost[e] != 2 {
			t.Errorf("plan puts %d containers on %s, want 2 (spread)", perHost[e], e)
		}
	}

	if out, err := ws.run(ctx, "apply", "-no-color", "tfplan"); err != nil {
		t.Fatalf("apply of the saved plan: %v\n%s", err, out)
	}
	onEngines := ccOnEngines(ctx, t, set, pool, set.Names()...)
	byName := rmByName(onEngines)
	for name, host := range planned {
		if got := byName[name]; len(got) != 1 || got[0] != host {
			t.Errorf("%s planned on %s, landed on %v", name, host, got)
		}
	}
	for _, c := range ccStateContainers(ctx, t, ws) {
		name, host, _ := strings.Cut(c, "@")
		if planned[name] != host {
			t.Errorf("state has %s, plan said %s", c, planned[name])
		}
	}
	rmCheckLedger(ctx, t, b, pool, onEngines)
	if code, out := ccExitCode(ctx, t, ws, "plan", "-detailed-exitcode", "-no-color"); code != 0 {
		t.Errorf("replan after apply exited %d, want 0 (no changes):\n%s", code, out)
	}

	// Resized in place through berthd, as in embedded mode: same
	// containers, new limits, and berthd's ledger follows.
	ws.write(remoteProviderHCL(b.url(), b.token, "30m") +
		ccContainers("w", pool, env.Image, 6, `cpu = 0.25`, `memory = "48MiB"`, `ports = [{ internal = 8080 }]`))
	if out, err := ws.run(ctx, "apply", "-auto-approve", "-no-color"); err != nil {
		t.Fatalf("resize: %v\n%s", err, out)
	}
	resized := ccOnEngines(ctx, t, set, pool, set.Names()...)
	for host, cs := range resized {
		for _, c := range cs {
			if c.MemoryBytes != 48<<20 || planned[c.Name] != host {
				t.Errorf("after the resize %s@%s has %d bytes, want 48MiB on %s", c.Name, host, c.MemoryBytes, planned[c.Name])
			}
		}
	}
	if untracked := ccUntracked(resized, ccStateContainers(ctx, t, ws)); len(untracked) > 0 || lcCount(resized) != 6 {
		t.Errorf("after the resize: %d containers, untracked %v", lcCount(resized), untracked)
	}
	before := map[string]bool{}
	for _, cs := range onEngines {
		for _, c := range cs {
			before[c.ID] = true
		}
	}
	for host, cs := range resized {
		for _, c := range cs {
			if !before[c.ID] {
				t.Errorf("%s@%s is a new container: the resize replaced it instead of updating it in place", c.Name, host)
			}
		}
	}
	rmCheckLedger(ctx, t, b, pool, resized)
	if out, err := ws.run(ctx, "destroy", "-auto-approve", "-no-color"); err != nil {
		t.Fatalf("destroy: %v\n%s", err, out)
	}
	if n := lcCount(ccOnEngines(ctx, t, set, pool, set.Names()...)); n != 0 {
		t.Errorf("%d containers left after destroy", n)
	}
	rmCheckLedger(ctx, t, b, pool, nil)
}

// Five applies from separate directories at once ask for more than the
// pool holds. berthd's one core places every plan: no host is
// overcommitted, every failure says why, nothing runs that no state
// knows. Plans that failed hold their leases until placement_lease runs
// out; after that, rerunning them one by one fills exactly the pool, evenly.
func TestAccBerthdFiveAppliesAtOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	const pool, perHost, each, lease = "pr-five", 4, 3, "20s"
	hosts := accHosts(accEnv(t), 1, "512MiB", 34800)
	for i := range hosts {
		hosts[i].MaxPerHost = perHost + 2 // CPU binds first: 4 x 0.25
	}
	b, set := rmSetup(ctx, t, pool, 26901, hosts)
	env := accEnv(t)
	slots := perHost * len(set.Names())

	var names []string
	racers := map[string]*cliWorkspace{}
	for i := range 5 {
		prefix := fmt.Sprintf("r%d", i)
		ws := newCLIWorkspace(t, env, remoteProviderHCL(b.url(), b.token, lease)+
			ccContainers(prefix, pool, env.Image, each, `cpu = 0.25`, `memory = "48MiB"`, `ports = [{ internal = 8080 }]`))
		t.Cleanup(func() { _, _ = ws.run(context.Background(), "destroy", "-auto-approve", "-refresh=false", "-no-color") })
		racers[prefix] = ws
		names = append(names, prefix)
	}

	results := ccApplyAll(ctx, racers)
	var failed []string
	check := func(r ccResult) map[string]string {
		state := ccStateContainers(ctx, t, racers[r.prefix])
		errs := ccErrors(r.out)
		t.Logf("apply %s: exit %d, %d created, %d errors", r.prefix, r.code, len(state), len(errs))
		if r.code == 0 && len(state) != each {
			t.Errorf("apply %s succeeded with %d of %d containers", r.prefix, len(state), each)
		}
		if r.code != 0 && len(errs) == 0 {
			t.Errorf("apply %s exited %d without an error diagnostic:\n%s", r.prefix, r.code, r.out)
		}
		for _, e := range errs {
			if !strings.Contains(e, "no host fits") {
				t.Errorf("apply %s: an error without the no-fit explanation: %s", r.prefix, e)
			}
		}
		return state
	}
	states := map[string]map[string]string{}
	for range racers {
		r := <-results
		states[r.prefix] = check(r)
		if r.code != 0 {
			failed = append(failed, r.prefix)
		}
	}
	sort.Strings(failed)
	onEngines := ccOnEngines(ctx, t, set, pool, set.Names()...)
	ccCheckCapacity(t, onEngines, perHost, 1000, 512<<20)
	allStates := make([]map[string]string, 0, len(states))
	for _, s := range states {
		allStates = append(allStates, s)
	}
	if untracked := ccUntracked(onEngines, allStates...); len(untracked) > 0 {
		t.Errorf("containers that no state knows: %v", untracked)
	}
	t.Logf("round 1: %d containers on the engines for %d slots; failed: %v", lcCount(onEngines), slots, failed)

	// Failed plans' leases run out (20s), berthd confirms with the engines
	// that no container holds them, and the failed applies run again.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		held := len(b.heldLeases(ctx, pool))
		if held == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d leases of failed plans still held after 3 minutes (placement_lease %s)", held, lease)
		}
		time.Sleep(time.Second)
	}
	for _, prefix := range failed {
		r := ccApply(ctx, racers[prefix])
		r.prefix = prefix
		states[prefix] = check(r)
	}

	onEngines = ccOnEngines(ctx, t, set, pool, set.Names()...)
	ccCheckCapacity(t, onEngines, perHost, 1000, 512<<20)
	if n := lcCount(onEngines); n != slots {
		t.Errorf("%d containers run, want exactly the %d that fit", n, slots)
	}
	for _, host := range set.Names() {
		if len(onEngines[host]) != perHost {
			t.Errorf("%s holds %d containers, want %d (balanced)", host, len(onEngines[host]), perHost)
		}
	}
	for name, hosts := range rmByName(onEngines) {
		if len(hosts) != 1 {
			t.Errorf("%s runs %d times: %v", name, len(hosts), hosts)
		}
	}
	rmCheckLedger(ctx, t, b, pool, onEngines)
	for _, prefix := range names {
		if out, err := racers[prefix].run(ctx, "destroy", "-auto-approve", "-refresh=false", "-no-color"); err != nil {
			t.Errorf("destroy %s: %v\n%s", prefix, err, out)
		}
	}
}

// A proxy between the provider and berthd answers 503 or drops the
// response after berthd did the work, at random and a bounded number of
// times. The apply converges, and nothing is duplicated: one container
// and one lease per resource.
func TestAccBerthdThroughFlakyProxy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	const pool = "pr-flaky"
	b, set := rmSetup(ctx, t, pool, 26902, accHosts(accEnv(t), 1, "512MiB", 35100))
	env := accEnv(t)
	proxy, proxyURL := startFlakyProxy(t, b.url(), 26903, 40)

	ws := newCLIWorkspace(t, env, remoteProviderHCL(proxyURL, b.token, "30m")+
		ccContainers("f", pool, env.Image, 8, `cpu = 0.1`, `memory = "32MiB"`, `ports = [{ internal = 8080 }]`))
	t.Cleanup(func() { _, _ = ws.run(context.Background(), "destroy", "-auto-approve", "-no-color") })
	applied := ccApply(ctx, ws)
	code, out := applied.code, applied.out
	rejected, dropped := proxy.injected()
	t.Logf("proxy injected %d 503s and %d dropped responses", rejected, dropped)
	if code != 0 {
		t.Fatalf("apply through the flaky proxy exited %d:\n%s", code, out)
	}
	if rejected+dropped == 0 {
		t.Fatal("the proxy injected no fault: the test proved nothing")
	}
	onEngines := ccOnEngines(ctx, t, set, pool, set.Names()...)
	byName := rmByName(onEngines)
	if len(byName) != 8 || lcCount(onEngines) != 8 {
		t.Errorf("engines hold %d containers under %d names, want 8 and 8: %v", lcCount(onEngines), len(byName), byName)
	}
	if untracked := ccUntracked(onEngines, ccStateContainers(ctx, t, ws)); len(untracked) > 0 {
		t.Errorf("containers that the state does not know: %v", untracked)
	}
	rmCheckLedger(ctx, t, b, pool, onEngines)
	if code, out := ccExitCode(ctx, t, ws, "plan", "-detailed-exitcode", "-no-color"); code != 0 {
		t.Errorf("replan exited %d, want 0:\n%s", code, out)
	}
	if code, out := ccExitCode(ctx, t, ws, "destroy", "-auto-approve", "-no-color"); code != 0 {
		t.Errorf("destroy through the flaky proxy exited %d:\n%s", code, out)
	}
	if n := lcCount(ccOnEngines(ctx, t, set, pool, set.Names()...)); n != 0 {
		t.Errorf("%d containers left after destroy", n)
	}
}

// berthd is killed with kill -9 while an apply creates containers, and
// restarted at once: the apply, or its rerun, converges; every container
// created before the kill is still bound in berthd's ledger, and the
// ledger matches the engines.
func TestAccBerthdKilledDuringApply(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const pool, n = "pr-kill", 9
	b, set := rmSetup(ctx, t, pool, 26904, accHosts(accEnv(t), 1, "512MiB", 35400))
	env := accEnv(t)

	ws := newCLIWorkspace(t, env, remoteProviderHCL(b.url(), b.token, "30m")+
		ccContainers("k", pool, env.Image, n, `cpu = 0.1`, `memory = "32MiB"`, `ports = [{ internal = 8080 }]`,
			`healthcheck = { test = ["CMD", "/app", "healthcheck"], interval = "1s" }`))
	t.Cleanup(func() { _, _ = ws.run(context.Background(), "destroy", "-auto-approve", "-no-color") })

	done := make(chan ccResult, 1)
	go func() { done <- ccApply(ctx, ws, "-parallelism=3") }()
	// Kill once the first containers exist, while others are being created.
	var before map[string][]engine.Container
	for {
		before = ccOnEngines(ctx, t, set, pool, set.Names()...)
		if lcCount(before) >= 2 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("no container appeared")
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.kill9()
	t.Logf("killed berthd with %d containers on the engines", lcCount(before))
	b.start()

	first := <-done
	t.Logf("apply during the kill exited %d", first.code)
	if first.code != 0 {
		for _, e := range ccErrors(first.out) {
			t.Logf("  %s", e)
		}
		if rerun := ccApply(ctx, ws); rerun.code != 0 {
			t.Fatalf("rerun after the restart exited %d:\n%s", rerun.code, rerun.out)
		}
	}
	onEngines := ccOnEngines(ctx, t, set, pool, set.Names()...)
	if got := rmByName(onEngines); len(got) != n || lcCount(onEngines) != n {
		t.Errorf("engines hold %d containers under %d names, want %d: %v", lcCount(onEngines), len(got), n, got)
	}
	if untracked := ccUntracked(onEngines, ccStateContainers(ctx, t, ws)); len(untracked) > 0 {
		t.Errorf("containers that the state does not know: %v", untracked)
	}
	for host, cs := range before {
		for _, c := range cs {
			if !c.Running { // still being created: the create decides its fate
				continue
			}
			kept := false
			for _, now := range onEngines[host] {
				kept = kept || now.ID == c.ID
			}
			if !kept {
				t.Errorf("%s@%s, running before the kill, is gone", c.Name, host)
			}
		}
	}
	rmCheckLedger(ctx, t, b, pool, onEngines)
	if code, out := ccExitCode(ctx, t, ws, "plan", "-detailed-exitcode", "-no-color"); code != 0 {
		t.Errorf("replan exited %d, want 0:\n%s", code, out)
	}
}

// A saved plan applied after its leases expired and were freed: each
// create is taken again on the host the plan showed, since it still fits
// there, and nothing lands anywhere else.
func TestAccBerthdExpiredLeaseKeepsPlannedHost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	const pool = "pr-expire"
	b, set := rmSetup(ctx, t, pool, 26905, accHosts(accEnv(t), 1, "512MiB", 35700))
	env := accEnv(t)

	ws := newCLIWorkspace(t, env, remoteProviderHCL(b.url(), b.token, "2s")+
		ccContainers("e", pool, env.Image, 4, `cpu = 0.25`, `memory = "32MiB"`))
	t.Cleanup(func() { _, _ = ws.run(context.Background(), "destroy", "-auto-approve", "-no-color") })
	if out, err := ws.run(ctx, "plan", "-out=tfplan", "-no-color"); err != nil {
		t.Fatalf("plan: %v\n%s", err, out)
	}
	planned := rmPlannedHosts(ctx, t, ws, "tfplan")
	for len(b.heldLeases(ctx, pool)) > 0 {
		if ctx.Err() != nil {
			t.Fatal("the plan's leases never expired")
		}
		time.Sleep(time.Second)
	}
	if out, err := ws.run(ctx, "apply", "-no-color", "tfplan"); err != nil {
		t.Fatalf("apply of a plan whose leases expired: %v\n%s", err, out)
	}
	byName := rmByName(ccOnEngines(ctx, t, set, pool, set.Names()...))
	for name, host := range planned {
		if got := byName[name]; len(got) != 1 || got[0] != host {
			t.Errorf("%s planned on %s, landed on %v", name, host, got)
		}
	}
}

// Through berthd, as in embedded mode: running = false stops the container
// in place and keeps its capacity; import rebuilds its state from berthd
// (an empty plan follows); an image change replaces it on a host the plan
// shows, and berthd's ledger matches the engines after each step.
func TestAccBerthdStopImportReplace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const pool = "pr-life"
	b, set := rmSetup(ctx, t, pool, 62890, accHosts(accEnv(t), 1, "512MiB", 62500))
	env := accEnv(t)
	config := func(image string, attrs ...string) string {
		return remoteProviderHCL(b.url(), b.token, "30m") + ccContainers("w", pool, image, 1,
			append([]string{`cpu = 0.25`, `memory = "32MiB"`, `ports = [{ internal = 8080 }]`, `env = { MESSAGE = "remote" }`}, attrs...)...)
	}
	ws := newCLIWorkspace(t, env, config(env.Image))
	t.Cleanup(func() { _, _ = ws.run(context.Background(), "destroy", "-auto-approve", "-no-color") })
	// only returns the one container of the pool, checking berthd's ledger.
	only := func(step string) (string, engine.Container) {
		t.Helper()
		onEngines := ccOnEngines(ctx, t, set, pool, set.Names()...)
		rmCheckLedger(ctx, t, b, pool, onEngines)
		for host, cs := range onEngines {
			if len(cs) == 1 && lcCount(onEngines) == 1 {
				return host, cs[0]
			}
		}
		t.Fatalf("%s: want one container on the engines, have %v", step, rmByName(onEngines))
		return "", engine.Container{}
	}
	empty := func(step string) {
		t.Helper()
		if code, out := ccExitCode(ctx, t, ws, "plan", "-detailed-exitcode", "-no-color"); code != 0 {
			t.Errorf("%s: plan exited %d, want 0 (no changes):\n%s", step, code, out)
		}
	}
	if out, err := ws.run(ctx, "apply", "-auto-approve", "-no-color"); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	host, first := only("create")
	if !first.Running {
		t.Errorf("w-0 is %s after the create, want running", first.State)
	}

	ws.write(config(env.Image, `running = false`))
	if out, err := ws.run(ctx, "apply", "-auto-approve", "-no-color"); err != nil {
		t.Fatalf("apply of running = false: %v\n%s", err, out)
	}
	if h, c := only("running = false"); h != host || c.ID != first.ID || c.Running {
		t.Errorf("after running = false: %s@%s is %s, want %s stopped in place on %s", c.Name, h, c.State, shortID(first.ID), host)
	}
	empty("after running = false")

	if out, err := ws.run(ctx, "state", "rm", "-no-color", "berth_container.w0"); err != nil {
		t.Fatalf("state rm: %v\n%s", err, out)
	}
	if out, err := ws.run(ctx, "import", "-no-color", "berth_container.w0", pool+"/w-0"); err != nil {
		t.Fatalf("import through berthd: %v\n%s", err, out)
	}
	if state := ccStateContainers(ctx, t, ws); state[first.ID] != "w-0@"+host || len(state) != 1 {
		t.Errorf("state after import: %v, want %s as w-0@%s", state, shortID(first.ID), host)
	}
	empty("after import")

	// Another tag of the test image: the image changes, so it is replaced.
	retagged := "berth-test/app:pr-life"
	retagTestImage(ctx, t, env, set, retagged)
	ws.write(config(retagged))
	if out, err := ws.run(ctx, "plan", "-out=tfplan", "-no-color"); err != nil || !strings.Contains(out, "must be replaced") {
		t.Fatalf("plan of the image change: %v, want a replacement\n%s", err, out)
	}
	planned := rmPlannedHosts(ctx, t, ws, "tfplan")
	if out, err := ws.run(ctx, "apply", "-no-color", "tfplan"); err != nil {
		t.Fatalf("apply of the replacement: %v\n%s", err, out)
	}
	h, replaced := only("replacement")
	if h != planned["w-0"] || replaced.ID == first.ID || replaced.Image != retagged || !replaced.Running {
		t.Errorf("after the replacement: %s@%s (%s, image %s, %s), want a new running container of %s on the planned %s",
			replaced.Name, h, shortID(replaced.ID), replaced.Image, replaced.State, retagged, planned["w-0"])
	}
	empty("after the replacement")
	if out, err := ws.run(ctx, "destroy", "-auto-approve", "-no-color"); err != nil {
		t.Fatalf("destroy: %v\n%s", err, out)
	}
	rmCheckLedger(ctx, t, b, pool, nil)
}
