package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/testenv"
	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

// Remote-mode acceptance tests run a real berthd, built from
// ./scheduler/cmd/berthd, on loopback over the test engines. Pools are
// named pr-*; host ports stay within 34500-35999. berthd and the flaky
// proxy listen on fixed ports 26900-26999 (every test that runs berthd takes
// one), below the kernel's ephemeral range (32768-60999), where a client
// socket could hold one when berthd starts or restarts.

// berthdProc is one berthd process that a test can kill -9 and restart on
// the same data directory and port.
type berthdProc struct {
	t       *testing.T
	bin     string
	args    []string
	token   string
	listen  string
	logPath string

	mu  sync.Mutex
	cmd *exec.Cmd
}

const berthdTestToken = "berth-acc-admin-token"

// startBerthd builds berthd and starts it with an admin token over every
// test engine, the TLS one over TLS, on a bolt store of its own, with
// flags added.
func startBerthd(t *testing.T, env *testenv.Env, port int, flags ...string) *berthdProc {
	t.Helper()
	dir := t.TempDir()
	bin, enginesFile := buildBerthd(t, env, dir)
	return runBerthd(t, bin, enginesFile, port, append([]string{"--data-dir", filepath.Join(dir, "data")}, flags...)...)
}

// buildBerthd builds berthd into dir and writes the test engines there as
// its engines.json.
func buildBerthd(t *testing.T, env *testenv.Env, dir string) (bin, enginesFile string) {
	t.Helper()
	bin = filepath.Join(dir, "berthd")
	build := exec.Command("go", "build", "-o", bin, "../scheduler/cmd/berthd")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building berthd: %v\n%s", err, out)
	}
	enginesFile, err := env.WriteBerthdEngines(dir)
	if err != nil {
		t.Fatal(err)
	}
	return bin, enginesFile
}

// runBerthd starts bin on port with storeArgs choosing its store (and any
// other flags), and
// stops it at the end of the test (its log shown if the test failed).
func runBerthd(t *testing.T, bin, enginesFile string, port int, storeArgs ...string) *berthdProc {
	t.Helper()
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	b := &berthdProc{
		t: t, bin: bin, token: berthdTestToken, listen: listen, logPath: filepath.Join(t.TempDir(), "berthd.log"),
		args: append([]string{"serve", "--listen", listen, "--engines", enginesFile}, storeArgs...),
	}
	b.start()
	t.Cleanup(func() {
		b.stop()
		if t.Failed() {
			if log, err := os.ReadFile(b.logPath); err == nil {
				t.Logf("berthd %s log:\n%s", listen, log)
			}
		}
	})
	return b
}

func (b *berthdProc) url() string { return "http://" + b.listen }

// start runs berthd and waits until /healthz answers 200.
func (b *berthdProc) start() {
	b.t.Helper()
	log, err := os.OpenFile(b.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		b.t.Fatal(err)
	}
	cmd := exec.Command(b.bin, b.args...)
	cmd.Env = append(os.Environ(), "BERTHD_ADMIN_TOKEN="+b.token)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("starting berthd: %v", err)
	}
	_ = log.Close()
	b.mu.Lock()
	b.cmd = cmd
	b.mu.Unlock()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(b.url() + api.PathHealthz)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			raw, _ := os.ReadFile(b.logPath)
			b.t.Fatalf("berthd did not become healthy at %s within a minute (last: %v)\n%s", b.url(), err, raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill9 kills berthd without any chance to clean up.
func (b *berthdProc) kill9() { b.signal(syscall.SIGKILL) }

// stop ends berthd gracefully (SIGTERM; SIGKILL after 30s).
func (b *berthdProc) stop() { b.signal(syscall.SIGTERM) }

func (b *berthdProc) signal(sig syscall.Signal) {
	b.mu.Lock()
	cmd := b.cmd
	b.cmd = nil
	b.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
}

// get reads one of berthd's GET routes as the admin.
func (b *berthdProc) get(ctx context.Context, path string, out any) {
	b.t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.url()+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+b.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatalf("GET %s: %v", path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("GET %s: HTTP %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		b.t.Fatalf("GET %s: %v", path, err)
	}
}

// heldLeases lists the pool's leases that no container holds yet (a bound
// lease becomes its container's reservation and leaves the list).
func (b *berthdProc) heldLeases(ctx context.Context, pool string) []api.Lease {
	var list api.LeaseList
	b.get(ctx, api.PathLeases+"?pool="+url.QueryEscape(pool), &list)
	return list.Leases
}

// usage is berthd's ledger of the pool.
func (b *berthdProc) usage(ctx context.Context, pool string) backend.PoolUsage {
	var usage backend.PoolUsage
	b.get(ctx, api.PoolUsagePath(pool), &usage)
	return usage
}

// remoteProviderHCL is a provider block in remote mode.
func remoteProviderHCL(schedulerURL, token, lease string) string {
	return fmt.Sprintf("provider \"berth\" {\n  scheduler_url   = %q\n  scheduler_token = %q\n  placement_lease = %q\n}\n", schedulerURL, token, lease)
}

// flakyProxy stands between the provider and berthd and, for a bounded
// number of requests, answers 503 without forwarding or forwards and then
// drops the response, so the client sees a lost connection after berthd
// did the work.
type flakyProxy struct {
	mu       sync.Mutex
	rng      *rand.Rand
	faults   int // left to inject
	rejected int
	dropped  int
}

func startFlakyProxy(t *testing.T, target string, port, faults int) (*flakyProxy, string) {
	t.Helper()
	upstream, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &flakyProxy{rng: rand.New(rand.NewPCG(uint64(port), uint64(faults))), faults: faults}
	forward := httputil.NewSingleHostReverseProxy(upstream)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p.decide() {
		case "reject":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"code":"proxy","message":"injected 503"}`))
		case "drop":
			forward.ServeHTTP(discard{header: http.Header{}}, r)
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					_ = conn.Close()
				}
			}
		default:
			forward.ServeHTTP(w, r)
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return p, "http://" + ln.Addr().String()
}

// decide picks the fate of one request: a third of them fail while faults last.
func (p *flakyProxy) decide() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.faults == 0 || p.rng.IntN(3) != 0 {
		return "forward"
	}
	p.faults--
	if p.rng.IntN(2) == 0 {
		p.rejected++
		return "reject"
	}
	p.dropped++
	return "drop"
}

func (p *flakyProxy) injected() (rejected, dropped int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rejected, p.dropped
}

// discard is a ResponseWriter that throws the answer away.
type discard struct{ header http.Header }

func (d discard) Header() http.Header         { return d.header }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}
