//go:build bench

package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/internal/testenv"
)

// The benchmark's shape, as the README states it.
const (
	benchPool        = "bench-e2e"
	benchParallelism = 10 // terraform -parallelism, and the engine loops' workers
	benchPlanRounds  = 3  // plans timed per size; the best counts
	benchCPU         = 0.1
	benchMemory      = "32MiB"
	benchMemoryBytes = 32 << 20
	benchLoopPrefix  = "bench-loop-"
)

// benchParallelismFlag is Terraform's flag for benchParallelism.
var benchParallelismFlag = fmt.Sprintf("-parallelism=%d", benchParallelism)

// Targets (issue 6): apply and destroy against the engine's own limit, the
// loops through the Docker API; plan of N existing containers in absolute
// time (reported, never asserted).
const (
	benchApplyTarget   = 1.10
	benchDestroyTarget = 1.30
)

var benchPlanTargets = map[int]time.Duration{300: 800 * time.Millisecond, 1000: 2700 * time.Millisecond}

// Host ports: Berth's port ranges (one block per engine, sized to the
// run), then the engine loop's explicit ports.
const (
	benchPortMin, benchPortMax         = 53000, 56999
	benchLoopPortMin, benchLoopPortMax = 57000, 58999
)

// benchSizes reads BERTH_BENCH_SIZES ("300,1000" by default): 1,000
// containers take minutes on 2 cores, so iterate at 300.
func benchSizes(t *testing.T) []int {
	t.Helper()
	text := os.Getenv("BERTH_BENCH_SIZES")
	if text == "" {
		text = "300,1000"
	}
	var sizes []int
	for _, field := range strings.Split(text, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n <= 0 {
			t.Fatalf("BERTH_BENCH_SIZES=%q: want sizes like 300,1000", text)
		}
		sizes = append(sizes, n)
	}
	return sizes
}

// TestBenchE2E times, in one run on the test engines and for each size N:
// the engine's own limit (a Go loop creating and starting N containers
// straight through the Docker API, 10 at a time, then one force-removing
// them; once before Terraform's runs and twice after, the last one
// stopping, then removing, as Berth's delete does: the API and remove
// loops reported are the means), terraform apply of the same N containers at -parallelism=10
// through the real provider binary, terraform plan (refresh included) of
// the N existing ones, and terraform destroy; then Terraform alone on the
// same number of terraform_data resources holding a container's values
// (its own floor, no provider). It counts the engine API
// calls of the refresh plan and of a plan that adds one container, per
// engine. Built only with the bench tag (make bench-e2e). Times are
// reported against their targets, never asserted; what each side created is.
func TestBenchE2E(t *testing.T) {
	env := testenv.Require(t)
	set := accEngines(t, env)
	cleanupPool(t, set, benchPool)
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Minute)
	defer cancel()
	clients := benchClients(t, env)
	t.Cleanup(func() { benchRemoveLoop(context.Background(), clients) })

	layout := benchLayout{env: env, endpoints: map[string]string{}, hosts: benchHosts(t, env, 0)}
	for _, e := range env.Engines {
		layout.endpoints[e.Name] = e.Socket
	}
	bin := buildProvider(t, env)
	w := newCLIWorkspaceWith(t, env, bin, layout.config(0))

	var report strings.Builder
	fmt.Fprintf(&report, "\nbench-e2e: containers of %g CPU, %s, one published port, restart unless-stopped, over %d engines, %d at a time\n",
		benchCPU, benchMemory, len(env.Engines), benchParallelism)
	fmt.Fprintf(&report, "  %6s  %-16s  %10s  %10s  %7s  %10s  %10s  %10s  %7s\n",
		"N", "load average", "API loop", "apply", "ratio", "plan", "remove loop", "destroy", "ratio")
	var notes strings.Builder
	for _, n := range benchSizes(t) {
		load := loadAverage()
		layout.hosts = benchHosts(t, env, n)
		w.write(layout.config(0))
		w.mustRun(ctx, "apply", "-auto-approve")

		// The engines' pace drifts within a run: their limit is measured
		// before and after Terraform's runs, and Terraform's times are
		// compared with the mean.
		createBefore, removeBefore := benchEngineLoop(ctx, t, env, clients, n, false)

		w.write(layout.config(n))
		apply := w.mustRun(ctx, "apply", "-auto-approve", benchParallelismFlag)
		checkBenchPool(ctx, t, set, n)
		var plans []time.Duration
		for range benchPlanRounds {
			plans = append(plans, w.mustRun(ctx, "plan", "-detailed-exitcode"))
		}
		plan := slices.Min(plans)

		// The same plan, then one adding a container, through counting
		// proxies, untimed: a proxy adds latency.
		refresh, addOne := newAPICounters(t, env), newAPICounters(t, env)
		counted := layout
		counted.endpoints = refresh.endpoints
		w.write(counted.config(n))
		w.mustRun(ctx, "plan", "-detailed-exitcode")
		counted.endpoints = addOne.endpoints
		w.write(counted.config(n + 1))
		if out, err := w.run(ctx, "plan", "-detailed-exitcode"); err == nil || !strings.Contains(out, "1 to add, 0 to change, 0 to destroy") {
			t.Fatalf("plan adding one container: %v\n%s", err, out)
		}

		alone := timeTerraformAlone(ctx, t, env, bin, containerValues(t, w), n)

		w.write(layout.config(n))
		destroy := w.mustRun(ctx, "destroy", "-auto-approve", benchParallelismFlag)
		checkBenchPool(ctx, t, set, 0)

		createAfter, removeAfter := benchEngineLoop(ctx, t, env, clients, n, false)
		createGraceful, loopStopRemove := benchEngineLoop(ctx, t, env, clients, n, true)
		loopCreate := (createBefore + createAfter + createGraceful) / 3
		loopRemove := (removeBefore + removeAfter) / 2

		applyRatio, destroyRatio := apply.Seconds()/loopCreate.Seconds(), destroy.Seconds()/loopRemove.Seconds()
		fmt.Fprintf(&report, "  %6d  %-16s  %8.2f s  %8.2f s  %6.2fx  %8.2f s  %8.2f s  %8.2f s  %6.2fx\n",
			n, load, loopCreate.Seconds(), apply.Seconds(), applyRatio, plan.Seconds(), loopRemove.Seconds(), destroy.Seconds(), destroyRatio)
		fmt.Fprintf(&notes, "  N=%d: apply %.2fx of the API loop (target <= %.2fx: %s); destroy %.2fx of the remove loop (target <= %.2fx: %s)",
			n, applyRatio, benchApplyTarget, verdict(applyRatio <= benchApplyTarget), destroyRatio, benchDestroyTarget, verdict(destroyRatio <= benchDestroyTarget))
		fmt.Fprintf(&notes, "; destroy %.2fx of a loop stopping, then removing (%.2f s)", destroy.Seconds()/loopStopRemove.Seconds(), loopStopRemove.Seconds())
		fmt.Fprintf(&notes, "\n    API loops (create+start): %s before Terraform's runs, %s and %s after; remove loops: %s before, %s after",
			seconds(createBefore), seconds(createAfter), seconds(createGraceful),
			seconds(removeBefore), seconds(removeAfter))
		if target, ok := benchPlanTargets[n]; ok {
			fmt.Fprintf(&notes, "; plan %.2f s (target <= %.1f s: %s)", plan.Seconds(), target.Seconds(), verdict(plan <= target))
		}
		fmt.Fprintf(&notes, "\n    Terraform alone (%d terraform_data, each holding a container's %d non-null attribute values): apply %s, plan %s (best of %s), destroy %s;"+
			" Berth : Terraform alone = apply %.2fx, plan %.2fx, destroy %.2fx",
			n, alone.attributes, seconds(alone.apply), seconds(alone.plan), seconds(alone.plans...), seconds(alone.destroy),
			apply.Seconds()/alone.apply.Seconds(), plan.Seconds()/alone.plan.Seconds(), destroy.Seconds()/alone.destroy.Seconds())
		fmt.Fprintf(&notes, "\n    plans: %s\n    engine API calls, refresh plan: %s\n    engine API calls, plan adding one container: %s\n",
			seconds(plans...), refresh.summary(), addOne.summary())
		t.Logf("N=%d done (1,000 takes minutes): %s%s", n, report.String(), notes.String())
	}
	fmt.Fprintf(&report, "%s  load average at the end: %s\n", notes.String(), loadAverage())
	t.Log(report.String())
}

// terraformAlone is Terraform's own cost for N resources carrying a
// container's values, with no provider process and no engine behind them.
type terraformAlone struct {
	attributes           int
	apply, plan, destroy time.Duration
	plans                []time.Duration
}

// timeTerraformAlone applies, plans (best of benchPlanRounds) and destroys
// n terraform_data resources at the benchmark's parallelism, each holding
// values in triggers_replace, in a workspace of its own (which declares
// the provider, as every workspace here does, and uses none of it): Terraform's floor
// for the same number of resources and about the same state (a
// conservative one: a container's null attributes are left out).
func timeTerraformAlone(ctx context.Context, t *testing.T, env *testenv.Env, bin string, values map[string]any, n int) terraformAlone {
	t.Helper()
	raw, err := json.Marshal(values)
	if err != nil {
		t.Fatal(err)
	}
	// JSON is HCL's object syntax; only template sequences need escaping.
	object := strings.NewReplacer("${", "$${", "%{", "%%{").Replace(string(raw))
	w := newCLIWorkspaceWith(t, env, bin, fmt.Sprintf("resource \"terraform_data\" \"same\" {\n  count            = %d\n  triggers_replace = %s\n}\n", n, object))
	alone := terraformAlone{attributes: len(values)}
	alone.apply = w.mustRun(ctx, "apply", "-auto-approve", benchParallelismFlag)
	for range benchPlanRounds {
		alone.plans = append(alone.plans, w.mustRun(ctx, "plan", "-detailed-exitcode"))
	}
	alone.plan = slices.Min(alone.plans)
	alone.destroy = w.mustRun(ctx, "destroy", "-auto-approve", benchParallelismFlag)
	return alone
}

// containerValues is the non-null attribute values of one container in
// the workspace's state.
func containerValues(t *testing.T, w *cliWorkspace) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(w.dir, "terraform.tfstate"))
	if err != nil {
		t.Fatal(err)
	}
	var state struct {
		Resources []struct {
			Type      string `json:"type"`
			Instances []struct {
				Attributes map[string]any `json:"attributes"`
			} `json:"instances"`
		} `json:"resources"`
	}
	if err := json.Unmarshal(data, &state); err != nil {
		t.Fatal(err)
	}
	for _, r := range state.Resources {
		if r.Type == "berth_container" && len(r.Instances) > 0 {
			values := map[string]any{}
			for k, v := range r.Instances[0].Attributes {
				if v != nil {
					values[k] = v
				}
			}
			return values
		}
	}
	t.Fatal("no berth_container in the workspace's state")
	return nil
}

// benchLayout is the benchmark's workspace: engines reached on endpoints
// (unix sockets), and a pool over them with hosts.
type benchLayout struct {
	env       *testenv.Env
	endpoints map[string]string
	hosts     []accPoolHost
}

// config renders the workspace with n containers, each with a port Berth picks.
func (l benchLayout) config(n int) string {
	env := l.env
	var b strings.Builder
	b.WriteString("provider \"berth\" {\n  engines = {\n")
	for _, e := range env.Engines {
		fmt.Fprintf(&b, "    %s = { endpoint = %q }\n", e.Name, l.endpoints[e.Name])
	}
	b.WriteString("  }\n}\n")
	b.WriteString(accPool(benchPool, "spread", l.hosts))
	fmt.Fprintf(&b, `resource "berth_container" "web" {
  count  = %d
  pool   = berth_pool.%s.id
  name   = "web-${count.index}"
  image  = %q
  cpu    = %g
  memory = %q
  ports  = [{ internal = 8080, external = 0 }]
}
`, n, benchPool, env.Image, benchCPU, benchMemory)
	return b.String()
}

// benchHosts gives every engine room for its share of n containers (and
// one more), with a block of host ports free right now.
func benchHosts(t *testing.T, env *testenv.Env, n int) []accPoolHost {
	t.Helper()
	hosts := make([]accPoolHost, len(env.Engines))
	ports := max(100, n/len(env.Engines)+50)
	from := benchPortMin
	for i, e := range env.Engines {
		start := freePortBlock(t, from, benchPortMax, ports)
		hosts[i] = accPoolHost{Engine: e.Name, CPU: 128, Memory: "64GiB", PortMin: start, PortCount: ports}
		from = start + ports
	}
	return hosts
}

// freePortBlock returns the first port of n consecutive ports of [from, to]
// that can be bound on 127.0.0.1 right now. The benchmark's ports lie in
// Linux's ephemeral range, where other programs' connections come and go:
// about 1% of it is taken at any moment on a busy machine, and a port
// checked just before use is rarely taken in between.
func freePortBlock(t *testing.T, from, to, n int) int {
	t.Helper()
	start := from
	for port := from; port <= to; port++ {
		if !portFree(port) {
			start = port + 1
			continue
		}
		if port-start+1 == n {
			return start
		}
	}
	t.Fatalf("no %d consecutive free ports in %d-%d", n, from, to)
	return 0
}

// freePorts returns n ports of [from, to] that can be bound right now.
func freePorts(t *testing.T, from, to, n int) []int {
	t.Helper()
	var ports []int
	for port := from; port <= to && len(ports) < n; port++ {
		if portFree(port) {
			ports = append(ports, port)
		}
	}
	if len(ports) < n {
		t.Fatalf("only %d free ports in %d-%d, want %d", len(ports), from, to, n)
	}
	return ports
}

func portFree(port int) bool {
	listener, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	_ = listener.Close()
	return true
}

// mustRun runs Terraform, fails the test on error, and returns the wall time.
func (w *cliWorkspace) mustRun(ctx context.Context, args ...string) time.Duration {
	w.t.Helper()
	start := time.Now()
	out, err := w.run(ctx, args...)
	took := time.Since(start)
	if err != nil {
		w.t.Fatalf("terraform %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return took
}

// benchClients opens a plain Docker API client per engine, as any program
// would: the loops go through none of Berth's code.
func benchClients(t *testing.T, env *testenv.Env) []*client.Client {
	t.Helper()
	clients := make([]*client.Client, len(env.Engines))
	for i, e := range env.Engines {
		c, err := client.NewClientWithOpts(client.WithHost(e.Socket), client.WithAPIVersionNegotiation())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		clients[i] = c
	}
	return clients
}

// benchLoopJob is one container of the engine loop: on engine i mod 3.
type benchLoopJob struct {
	api  *client.Client
	name string
}

// benchEngineLoop creates and starts n containers like Berth's (same
// image, CPU, memory, restart policy, one published port) straight through
// the Docker API, benchParallelism at a time, container i on engine i mod
// 3; it checks they run, then removes them the same way: force-removes
// them, or, with graceful, stops each (as Berth's delete does, giving it
// its stop timeout) and then removes it. It returns both wall times.
func benchEngineLoop(ctx context.Context, t *testing.T, env *testenv.Env, clients []*client.Client, n int, graceful bool) (create, remove time.Duration) {
	t.Helper()
	ports := newBenchPorts(freePorts(t, benchLoopPortMin, benchLoopPortMax, n+benchSparePorts))
	jobs := make([]benchLoopJob, n)
	for i := range jobs {
		jobs[i] = benchLoopJob{api: clients[i%len(clients)], name: fmt.Sprintf("%s%d", benchLoopPrefix, i)}
	}
	start := time.Now()
	err := inParallel(jobs, func(_ int, j benchLoopJob) error {
		for {
			port, ok := ports.take()
			if !ok {
				return fmt.Errorf("%s: all %d spare ports were taken by other programs", j.name, benchSparePorts)
			}
			err := benchRun(ctx, env, j, port)
			if err == nil || !strings.Contains(err.Error(), "address already in use") {
				return err
			}
			// Another program's connection took the port since it was
			// checked (the ports lie in Linux's ephemeral range): like
			// Berth, take another one.
			if err := j.api.ContainerRemove(ctx, j.name, container.RemoveOptions{Force: true}); err != nil {
				return err
			}
		}
	})
	create = time.Since(start)
	if err != nil {
		t.Fatalf("engine loop: %v", err)
	}
	if taken := ports.retaken(); taken > 0 {
		t.Logf("engine loop: %d ports were taken by other programs between check and use, and replaced", taken)
	}
	running := 0
	for _, api := range clients {
		listed, err := api.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(
			filters.Arg("name", benchLoopPrefix), filters.Arg("status", "running"))})
		if err != nil {
			t.Fatal(err)
		}
		running += len(listed)
	}
	if running != n {
		t.Fatalf("engine loop: %d containers running, want %d", running, n)
	}
	start = time.Now()
	err = inParallel(jobs, func(_ int, j benchLoopJob) error {
		if graceful {
			if err := j.api.ContainerStop(ctx, j.name, container.StopOptions{}); err != nil {
				return err
			}
		}
		return j.api.ContainerRemove(ctx, j.name, container.RemoveOptions{Force: true})
	})
	remove = time.Since(start)
	if err != nil {
		t.Fatalf("remove loop: %v", err)
	}
	return create, remove
}

// benchSparePorts are checked beyond the loop's n, for ports another
// program takes between check and use.
const benchSparePorts = 200

// benchPorts hands out checked ports, one per container, then the spares.
type benchPorts struct {
	mu    sync.Mutex
	free  []int
	given int
	n     int
}

func newBenchPorts(free []int) *benchPorts {
	return &benchPorts{free: free, n: len(free) - benchSparePorts}
}

// take returns the next port, false when the spares are used up.
func (p *benchPorts) take() (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.given == len(p.free) {
		return 0, false
	}
	p.given++
	return p.free[p.given-1], true
}

// retaken says how many spares were used.
func (p *benchPorts) retaken() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return max(0, p.given-p.n)
}

// benchRun creates and starts one loop container publishing hostPort.
func benchRun(ctx context.Context, env *testenv.Env, j benchLoopJob, hostPort int) error {
	port := nat.Port("8080/tcp")
	config := &container.Config{Image: env.Image, ExposedPorts: nat.PortSet{port: struct{}{}}}
	host := &container.HostConfig{
		Resources:     container.Resources{NanoCPUs: int64(benchCPU * 1e9), Memory: benchMemoryBytes, MemorySwap: benchMemoryBytes},
		PortBindings:  nat.PortMap{port: {{HostIP: "", HostPort: strconv.Itoa(hostPort)}}},
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
	}
	created, err := j.api.ContainerCreate(ctx, config, host, nil, nil, j.name)
	if err != nil {
		return err
	}
	return j.api.ContainerStart(ctx, created.ID, container.StartOptions{})
}

// benchRemoveLoop removes whatever a failed run left of the engine loop.
func benchRemoveLoop(ctx context.Context, clients []*client.Client) {
	for _, api := range clients {
		listed, err := api.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("name", benchLoopPrefix))})
		if err != nil {
			continue
		}
		for _, c := range listed {
			_ = api.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
		}
	}
}

// inParallel runs fn over jobs with benchParallelism workers and joins the errors.
func inParallel[J any](jobs []J, fn func(i int, j J) error) error {
	next := make(chan int)
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for range benchParallelism {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = fn(i, jobs[i])
			}
		}()
	}
	for i := range jobs {
		next <- i
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

// checkBenchPool checks the pool's containers on the engines: want of them,
// spread evenly, all running, and every published port answering HTTP.
func checkBenchPool(ctx context.Context, t *testing.T, set *engine.Set, want int) {
	t.Helper()
	byHost, err := poolContainers(ctx, set, benchPool)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	client := &http.Client{Timeout: 5 * time.Second}
	for host, containers := range byHost {
		// Spread: every host holds want/hosts, rounded down or up (1,000 on 3).
		if fewest := want / len(byHost); len(containers) < fewest || len(containers) > fewest+min(1, want%len(byHost)) {
			t.Errorf("%s holds %d containers of the pool, want %d or %d (spread)", host, len(containers), fewest, fewest+min(1, want%len(byHost)))
		}
		total += len(containers)
		for _, c := range containers {
			if !c.Running {
				t.Errorf("%s on %s is %s, want running", c.Name, host, c.State)
			}
			for _, p := range c.Ports {
				if err := answers(ctx, client, fmt.Sprintf("http://127.0.0.1:%d/healthz", p.External)); err != nil {
					t.Errorf("%s on %s: %v", c.Name, host, err)
				}
			}
		}
	}
	if total != want {
		t.Fatalf("the pool holds %d containers, want %d", total, want)
	}
}

// healthPatience bounds how long a published port that times out is
// asked again. With 1,000 containers on this one machine, the host's
// neighbour (ARP) table, 1,024 entries by default
// (net.ipv4.neigh.default.gc_thresh3), fills while the checks reach every
// container (/proc/net/stat/arp_cache counts table_fulls): a docker-proxy
// then cannot reach its container until older entries go stale (30-60 s),
// and the same port answers in 1 ms a minute later.
const healthPatience = time.Minute

// answers is httpOK, asked again with doubling waits while it times out,
// for up to healthPatience; any answer but 200 fails at once.
func answers(ctx context.Context, client *http.Client, url string) error {
	deadline := time.Now().Add(healthPatience)
	for wait := time.Second; ; wait *= 2 {
		var timeout interface{ Timeout() bool }
		err := httpOK(ctx, client, url)
		if err == nil || !errors.As(err, &timeout) || !timeout.Timeout() {
			return err
		}
		if time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("%w (asked again for %s)", err, healthPatience)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return err
		}
	}
}

func httpOK(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// seconds lists durations as "1.23 s, 2.34 s".
func seconds(ds ...time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("%.2f s", d.Seconds())
	}
	return strings.Join(parts, ", ")
}

// loadAverage is the machine's load average over 1, 5 and 15 minutes, "?"
// where unknown: the figures mean little on a machine busy with other work.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if fields := strings.Fields(string(data)); err == nil && len(fields) >= 3 {
		return strings.Join(fields[:3], " ")
	}
	return "?"
}

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "MISSED"
}

// apiCounters counts the engine API calls of one Terraform command, per
// engine: each engine is reached through a counting proxy (endpoints).
type apiCounters struct {
	endpoints map[string]string
	byEngine  map[string]*apiCounter
}

func newAPICounters(t *testing.T, env *testenv.Env) apiCounters {
	t.Helper()
	counters := apiCounters{endpoints: map[string]string{}, byEngine: map[string]*apiCounter{}}
	for _, e := range env.Engines {
		c := &apiCounter{calls: map[string]int{}}
		counters.byEngine[e.Name] = c
		counters.endpoints[e.Name] = c.proxy(t, e.Socket)
	}
	return counters
}

// summary says "node1: N in all (GET /x: n, ...); node2: ...".
func (c apiCounters) summary() string {
	names := make([]string, 0, len(c.byEngine))
	for name := range c.byEngine {
		names = append(names, name)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = name + ": " + c.byEngine[name].summary()
	}
	return strings.Join(parts, "; ")
}

// apiCounter serves engines' APIs through unix sockets of its own and counts
// the calls by method and path (API version and container ids left out).
type apiCounter struct {
	mu    sync.Mutex
	calls map[string]int
}

var (
	apiVersionPrefix = regexp.MustCompile(`^/v[0-9.]+/`)
	containerIDPart  = regexp.MustCompile(`[0-9a-f]{64}`)
)

// proxy starts a counting proxy to the engine at socket (unix://) and
// returns its endpoint; it stops when the test ends.
func (c *apiCounter) proxy(t *testing.T, socket string) string {
	t.Helper()
	target := strings.TrimPrefix(socket, "unix://")
	forward := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host = "http", "docker"
		},
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", target)
		}},
	}
	path := filepath.Join(t.TempDir(), "engine.sock")
	listener, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	server := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.count(r)
		forward.ServeHTTP(w, r)
	})}
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(func() { _ = server.Close() })
	return "unix://" + path
}

func (c *apiCounter) count(r *http.Request) {
	path := apiVersionPrefix.ReplaceAllString(r.URL.Path, "/")
	path = containerIDPart.ReplaceAllString(path, "{id}")
	c.mu.Lock()
	c.calls[r.Method+" "+path]++
	c.mu.Unlock()
}

// summary says "N in all (GET /x: n, ...)", most frequent first.
func (c *apiCounter) summary() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	kinds := make([]string, 0, len(c.calls))
	total := 0
	for kind, n := range c.calls {
		kinds = append(kinds, kind)
		total += n
	}
	slices.SortFunc(kinds, func(a, b string) int {
		if c.calls[a] != c.calls[b] {
			return c.calls[b] - c.calls[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(kinds))
	for i, kind := range kinds {
		parts[i] = fmt.Sprintf("%s: %d", kind, c.calls[kind])
	}
	return fmt.Sprintf("%d in all (%s)", total, strings.Join(parts, ", "))
}
