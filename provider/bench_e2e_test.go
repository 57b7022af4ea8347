//go:build bench

package provider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/internal/testenv"
)

// The benchmark's shape, as the README states it.
const (
	benchPool        = "bench-e2e"
	benchCreates     = 60  // containers created by each contender
	benchExisting    = 300 // containers refreshed by the timed plan
	benchParallelism = 10  // terraform -parallelism, and docker CLI workers
	benchRounds      = 5   // alternating rounds of each contender; plans timed
	benchCPU         = 0.1
	benchMemory      = "32MiB"
	benchMemoryCLI   = "32m"
	benchApplyTarget = 1.15
	benchPlanTarget  = 2500 * time.Millisecond
)

// Host ports: Berth's port ranges (100 per engine), then the docker CLI's
// explicit ports.
const (
	benchPortMin, benchPortMax       = 53000, 55999
	benchCLIPortMin, benchCLIPortMax = 56000, 58999
)

// TestBenchE2E times, in one run on the test engines: (a) terraform apply of
// 60 containers at -parallelism=10 through the real provider binary against
// the docker CLI creating the same containers with 10 workers, in
// alternating rounds, since other work on the machine changes both; (b)
// terraform plan, refresh included, of 300 existing containers, and the
// engine API calls that plan makes. It is built only with the bench tag
// (make bench-e2e). Times are reported against their targets, never asserted;
// what each side created is.
func TestBenchE2E(t *testing.T) {
	env := testenv.Require(t)
	set := accEngines(t, env)
	cleanupPool(t, set, benchPool)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	layout := benchLayout{env: env, endpoints: map[string]string{}, hosts: benchHosts(t, env)}
	for _, e := range env.Engines {
		layout.endpoints[e.Name] = e.Socket
	}
	w := newCLIWorkspace(t, env, layout.config(0, 0))
	w.mustRun(ctx, "apply", "-auto-approve")
	parallelism := fmt.Sprintf("-parallelism=%d", benchParallelism)

	// (a) Each round, both contenders start from engines without the
	// benchmark's containers; the last round's stay for (b).
	var report strings.Builder
	fmt.Fprintf(&report, "\nbench-e2e: %d containers (%g CPU, %s, one published port) over %d engines, %d at a time (load average %s)\n",
		benchCreates, benchCPU, benchMemory, len(env.Engines), benchParallelism, loadAverage())
	fmt.Fprintf(&report, "  round  docker CLI (docker run -d)  terraform apply  ratio\n")
	var cliTimes, applyTimes []time.Duration
	var ratios []float64
	for round := range benchRounds {
		if round > 0 {
			layout.hosts = benchHosts(t, env)
			w.write(layout.config(0, 0))
			w.mustRun(ctx, "apply", "-auto-approve", parallelism)
		}
		cliTime := benchDockerCLI(ctx, t, env, freePortBlock(t, benchCLIPortMin, benchCLIPortMax, benchCreates))
		w.write(layout.config(benchCreates, 0))
		applyTime := w.mustRun(ctx, "apply", "-auto-approve", parallelism)
		checkBenchPool(ctx, t, set, benchCreates)
		cliTimes, applyTimes = append(cliTimes, cliTime), append(applyTimes, applyTime)
		ratios = append(ratios, applyTime.Seconds()/cliTime.Seconds())
		fmt.Fprintf(&report, "  %5d  %24.2f s  %13.2f s  %.2fx\n", round+1, cliTime.Seconds(), applyTime.Seconds(), ratios[round])
	}
	bestCLI, bestApply := slices.Min(cliTimes), slices.Min(applyTimes)
	fmt.Fprintf(&report, "  best   %24.2f s  %13.2f s  %.2fx\n", bestCLI.Seconds(), bestApply.Seconds(), bestApply.Seconds()/bestCLI.Seconds())
	// Each round's contenders ran back to back, under much the same load.
	slices.Sort(ratios)
	median := ratios[len(ratios)/2]
	fmt.Fprintf(&report, "  median ratio of the rounds: %.2fx (target <= %.2fx: %s)\n", median, benchApplyTarget, verdict(median <= benchApplyTarget))

	// (b) Fill up to 300, then refresh them all in plans that find nothing to do.
	w.write(layout.config(benchCreates, benchExisting-benchCreates))
	fillTime := w.mustRun(ctx, "apply", "-auto-approve", parallelism)
	checkBenchPool(ctx, t, set, benchExisting)
	fmt.Fprintf(&report, "bench-e2e: %d existing containers (terraform apply of the %d more: %.2f s)\n",
		benchExisting, benchExisting-benchCreates, fillTime.Seconds())
	var planTimes []time.Duration
	for range benchRounds {
		planTimes = append(planTimes, w.mustRun(ctx, "plan", "-detailed-exitcode"))
	}
	bestPlan := slices.Min(planTimes)
	fmt.Fprintf(&report, "  terraform plan, refresh of %d: %s; best %.2f s (target < %.1f s: %s)\n",
		benchExisting, seconds(planTimes), bestPlan.Seconds(), benchPlanTarget.Seconds(), verdict(bestPlan < benchPlanTarget))

	// The same plan again through counting proxies, untimed: a proxy adds latency.
	counter := &apiCounter{calls: map[string]int{}}
	proxied := make(map[string]string, len(env.Engines))
	for _, e := range env.Engines {
		proxied[e.Name] = counter.proxy(t, e.Socket)
	}
	layout.endpoints = proxied
	w.write(layout.config(benchCreates, benchExisting-benchCreates))
	w.mustRun(ctx, "plan", "-detailed-exitcode")
	fmt.Fprintf(&report, "  engine API calls of that plan: %s\n", counter.summary())
	t.Log(report.String())
}

// benchLayout is the benchmark's workspace: engines reached on endpoints
// (unix sockets, like the docker CLI), and a pool over them with hosts.
type benchLayout struct {
	env       *testenv.Env
	endpoints map[string]string
	hosts     []accPoolHost
}

// config renders the workspace with `published` containers, each with a
// port Berth picks, and `idle` ones without.
func (l benchLayout) config(published, idle int) string {
	env := l.env
	var b strings.Builder
	b.WriteString("provider \"berth\" {\n  engines = {\n")
	for _, e := range env.Engines {
		fmt.Fprintf(&b, "    %s = { endpoint = %q }\n", e.Name, l.endpoints[e.Name])
	}
	b.WriteString("  }\n}\n")
	b.WriteString(accPool(benchPool, "spread", l.hosts))
	container := func(resource, ports string, count int) {
		fmt.Fprintf(&b, `resource "berth_container" %q {
  count  = %d
  pool   = berth_pool.%s.id
  name   = "%s-${count.index}"
  image  = %q
  cpu    = %g
  memory = %q
%s}
`, resource, count, benchPool, resource, env.Image, benchCPU, benchMemory, ports)
	}
	container("web", "  ports  = [{ internal = 8080, external = 0 }]\n", published)
	container("idle", "", idle)
	return b.String()
}

// benchHosts gives every engine the same capacity and a port range of 100
// ports free right now.
func benchHosts(t *testing.T, env *testenv.Env) []accPoolHost {
	t.Helper()
	hosts := make([]accPoolHost, len(env.Engines))
	from := benchPortMin
	for i, e := range env.Engines {
		start := freePortBlock(t, from, benchPortMax, 100)
		hosts[i] = accPoolHost{Engine: e.Name, CPU: 16, Memory: "8GiB", PortMin: start}
		from = start + 100
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
		listener, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			start = port + 1
			continue
		}
		_ = listener.Close()
		if port-start+1 == n {
			return start
		}
	}
	t.Fatalf("no %d consecutive free ports in %d-%d", n, from, to)
	return 0
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

// benchDockerCLI creates the benchmark's containers with `docker run -d`,
// benchParallelism workers, container i on engine i mod 3 with host port
// firstPort+i; it returns the wall time, then checks they run and removes
// them.
func benchDockerCLI(ctx context.Context, t *testing.T, env *testenv.Env, firstPort int) time.Duration {
	t.Helper()
	type job struct {
		engine testenv.Engine
		args   []string
	}
	name := func(i int) string { return fmt.Sprintf("bench-cli-%d", i) }
	var runs, removes []job
	for i := range benchCreates {
		e := env.Engines[i%len(env.Engines)]
		runs = append(runs, job{e, []string{"run", "-d", "--name", name(i),
			"--cpus", fmt.Sprint(benchCPU), "--memory", benchMemoryCLI, "--memory-swap", benchMemoryCLI,
			"--restart", "unless-stopped", "-p", fmt.Sprintf("%d:8080", firstPort+i), env.Image}})
		removes = append(removes, job{e, []string{"rm", "-f", name(i)}})
	}
	docker := func(j job) error {
		cmd := exec.CommandContext(ctx, "docker", append([]string{"-H", j.engine.Socket}, j.args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("docker -H %s %s: %w\n%s", j.engine.Socket, strings.Join(j.args, " "), err, out)
		}
		return nil
	}
	inParallel := func(jobs []job) error {
		queue := make(chan job)
		errs := make(chan error, len(jobs))
		var wg sync.WaitGroup
		for range benchParallelism {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range queue {
					errs <- docker(j)
				}
			}()
		}
		for _, j := range jobs {
			queue <- j
		}
		close(queue)
		wg.Wait()
		close(errs)
		var all []error
		for err := range errs {
			all = append(all, err)
		}
		return errors.Join(all...)
	}
	t.Cleanup(func() { _ = inParallel(removes) })

	start := time.Now()
	err := inParallel(runs)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	running := 0
	for _, e := range env.Engines {
		out, err := exec.CommandContext(ctx, "docker", "-H", e.Socket, "ps", "-q", "--filter", "name=bench-cli-", "--filter", "status=running").Output()
		if err != nil {
			t.Fatalf("docker ps on %s: %v", e.Name, err)
		}
		running += len(strings.Fields(string(out)))
	}
	if running != benchCreates {
		t.Fatalf("docker CLI: %d containers running, want %d", running, benchCreates)
	}
	if err := inParallel(removes); err != nil {
		t.Fatal(err)
	}
	return took
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
		if len(containers) != want/len(byHost) {
			t.Errorf("%s holds %d containers of the pool, want %d (spread)", host, len(containers), want/len(byHost))
		}
		total += len(containers)
		for _, c := range containers {
			if !c.Running {
				t.Errorf("%s on %s is %s, want running", c.Name, host, c.State)
			}
			for _, p := range c.Ports {
				if err := httpOK(ctx, client, fmt.Sprintf("http://127.0.0.1:%d/healthz", p.External)); err != nil {
					t.Errorf("%s on %s: %v", c.Name, host, err)
				}
			}
		}
	}
	if total != want {
		t.Fatalf("the pool holds %d containers, want %d", total, want)
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
func seconds(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("%.2f s", d.Seconds())
	}
	return strings.Join(parts, ", ")
}

// loadAverage is the machine's 1-minute load average, "?" where unknown:
// the figures mean little on a machine busy with other work.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if fields := strings.Fields(string(data)); err == nil && len(fields) > 0 {
		return fields[0]
	}
	return "?"
}

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "MISSED"
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
