package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/testenv"
	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

// binary is berthd, built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "berthd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "berthd")
	build := exec.Command("go", "build", "-race", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building berthd:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

const adminToken = "admin-token-for-berthd-tests"

// berthd is one running berthd process.
type berthd struct {
	cmd    *exec.Cmd
	url    string
	client *http.Client
	mu     sync.Mutex
	log    bytes.Buffer
	exited chan error
}

// start runs berthd serve with args and extra environment, and waits for
// its "listening" line.
func start(t *testing.T, client *http.Client, env []string, args ...string) *berthd {
	t.Helper()
	b := &berthd{client: client, exited: make(chan error, 1)}
	b.cmd = exec.Command(binary, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	b.cmd.Env = append(os.Environ(), env...)
	stderr, err := b.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	listening := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(stderr)
		lines.Buffer(nil, 1<<20)
		for lines.Scan() {
			b.mu.Lock()
			b.log.WriteString(lines.Text() + "\n")
			b.mu.Unlock()
			var line struct{ Msg, URL string }
			if json.Unmarshal(lines.Bytes(), &line) == nil && line.Msg == "listening" && b.url == "" {
				listening <- line.URL
			}
		}
		b.exited <- b.cmd.Wait()
	}()
	t.Cleanup(func() {
		if b.cmd.ProcessState == nil {
			_ = b.cmd.Process.Kill()
			if err := <-b.exited; err == nil {
				t.Log("berthd exited cleanly when killed at cleanup")
			}
		}
	})
	select {
	case b.url = <-listening:
	case err := <-b.exited:
		t.Fatalf("berthd exited before listening (%v): %s", err, b.logs())
	case <-time.After(time.Minute):
		t.Fatalf("berthd did not say where it listens: %s", b.logs())
	}
	return b
}

func (b *berthd) logs() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.log.String()
}

// waitReady polls /healthz until 200.
func (b *berthd) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		resp, err := b.client.Get(b.url + api.PathHealthz)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("berthd never became ready: %s", b.logs())
}

type answer struct {
	status int
	replay bool
	body   []byte
}

func (a answer) code() string {
	var e api.Error
	_ = json.Unmarshal(a.body, &e)
	return e.Code
}

// do sends a request; status -1 is a connection error.
func (b *berthd) do(method, path, token, key string, body any) answer {
	var data []byte
	if body != nil {
		data, _ = json.Marshal(body)
	}
	req, _ := http.NewRequest(method, b.url+path, bytes.NewReader(data))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		req.Header.Set(api.HeaderIdempotencyKey, key)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return answer{status: -1, body: []byte(err.Error())}
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, replay: resp.Header.Get(api.HeaderReplay) == "true", body: out}
}

// settle repeats a request (same key) until it has an answer that is not
// "try again": what a client does across a berthd restart.
func (b *berthd) settle(t *testing.T, method, path, key string, body any) answer {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		a := b.do(method, path, adminToken, key, body)
		retry := a.status == -1 || a.code() == api.CodeInFlight || a.code() == api.CodeNotReady || a.code() == api.CodeShuttingDown
		if !retry || time.Now().After(deadline) {
			return a
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func decodeAs[T any](t *testing.T, a answer, want int) T {
	t.Helper()
	var v T
	if a.status != want {
		t.Fatalf("status %d %s, want %d", a.status, a.body, want)
	}
	if err := json.Unmarshal(a.body, &v); err != nil {
		t.Fatalf("decoding %s: %v", a.body, err)
	}
	return v
}

func testPool(env *testenv.Env, name string, slots, portBase int) backend.PoolSpec {
	spec := backend.PoolSpec{Name: name, Strategy: "spread", Hosts: map[string]backend.PoolHostSpec{}}
	for i, e := range env.Engines {
		spec.Hosts[e.Name] = backend.PoolHostSpec{
			MilliCPU: int64(slots) * 250, MemoryBytes: 1 << 30,
			PortMin: portBase + i*50, PortMax: portBase + i*50 + 49,
		}
	}
	return spec
}

func webSpec(env *testenv.Env, pool, name string) backend.ContainerSpec {
	return backend.ContainerSpec{
		Pool: pool, Name: name, Image: env.Image,
		Resources: backend.Resources{MilliCPU: 250, MemoryBytes: 16 << 20},
		Ports:     []backend.PortSpec{{Internal: 8080}}, SpreadGroup: "web", Restart: "no", StopTimeout: time.Second,
	}
}

// cleanPool removes the pool's containers, volumes and records from the engines.
func cleanPool(t *testing.T, env *testenv.Env, pool string) {
	t.Cleanup(func() {
		for _, e := range env.Engines {
			for _, id := range dockerIDs(t, e, "label=sh.berth.pool="+pool) {
				_ = exec.Command("docker", "-H", e.Socket, "rm", "-f", id).Run()
			}
			records, _ := exec.Command("docker", "-H", e.Socket, "volume", "ls", "-q", "--filter", "name=berth-pool-"+pool+"-").Output()
			volumes, _ := exec.Command("docker", "-H", e.Socket, "volume", "ls", "-q", "--filter", "label=sh.berth.pool="+pool, "--filter", "label=sh.berth.volume").Output()
			for _, v := range strings.Fields(string(records) + " " + string(volumes)) {
				_ = exec.Command("docker", "-H", e.Socket, "volume", "rm", v).Run()
			}
		}
	})
}

func dockerIDs(t *testing.T, e testenv.Engine, filter string) []string {
	out, err := exec.Command("docker", "-H", e.Socket, "ps", "-aq", "--no-trunc", "--filter", filter).Output()
	if err != nil {
		t.Errorf("docker ps on %s: %v", e.Name, err)
	}
	return strings.Fields(string(out))
}

// engineContainers maps each container name of the pool to the engines
// holding one, as the docker CLI sees them.
func engineContainers(t *testing.T, env *testenv.Env, pool string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, e := range env.Engines {
		for _, id := range dockerIDs(t, e, "label=sh.berth.pool="+pool) {
			name, err := exec.Command("docker", "-H", e.Socket, "inspect", "-f", `{{index .Config.Labels "sh.berth.name"}}`, id).Output()
			if err != nil {
				t.Fatal(err)
			}
			out[strings.TrimSpace(string(name))] = append(out[strings.TrimSpace(string(name))], e.Name)
		}
	}
	return out
}

// oneEach checks that each of the pool's containers w0..w(n-1) is on
// exactly one engine, and nothing else is, and counts them per engine.
func oneEach(t *testing.T, env *testenv.Env, pool string, n int) map[string]int {
	t.Helper()
	onEngines := engineContainers(t, env, pool)
	perHost := map[string]int{}
	for i := range n {
		hosts := onEngines[fmt.Sprintf("w%d", i)]
		if len(hosts) != 1 {
			t.Errorf("w%d is on %v, want exactly one engine", i, hosts)
			continue
		}
		perHost[hosts[0]]++
	}
	if len(onEngines) != n {
		t.Errorf("%d container names of pool %s on the engines, want %d", len(onEngines), pool, n)
	}
	return perHost
}

func sha(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func enginesFile(t *testing.T, env *testenv.Env) string {
	t.Helper()
	path, err := env.WriteBerthdEngines(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// berthd over the local engines: flags from BERTHD_* variables, /healthz,
// a lease shown at plan and a create landing there, a clean SIGTERM, and
// a restart that rebuilds the ledger from the engines and the store.
func TestServeAndRestart(t *testing.T) {
	env := testenv.Require(t)
	cleanPool(t, env, "cmd1")
	dataDir := t.TempDir()
	vars := []string{"BERTHD_DATA_DIR=" + dataDir, "BERTHD_ENGINES=" + enginesFile(t, env), "BERTHD_ADMIN_TOKEN=" + adminToken}
	b := start(t, http.DefaultClient, vars)
	b.waitReady(t)
	decodeAs[backend.PoolStatus](t, b.settle(t, "PUT", api.PoolPath("cmd1"), "pool-1", testPool(env, "cmd1", 4, 34050)), http.StatusOK)
	lease := decodeAs[api.Lease](t, b.do("POST", api.PathLeases, adminToken, "lease-1", api.LeaseRequest{Spec: webSpec(env, "cmd1", "web-0")}), http.StatusOK)
	held := decodeAs[api.Lease](t, b.do("POST", api.PathLeases, adminToken, "lease-2", api.LeaseRequest{Spec: webSpec(env, "cmd1", "web-1")}), http.StatusOK)
	state := decodeAs[backend.ContainerState](t, b.settle(t, "POST", api.PathContainers, "create-1",
		api.CreateRequest{Spec: webSpec(env, "cmd1", "web-0"), LeaseID: lease.ID, PlannedHost: lease.Host}), http.StatusCreated)
	if state.Ref.Host != lease.Host {
		t.Errorf("created on %s, the lease showed %s", state.Ref.Host, lease.Host)
	}

	// SIGTERM while a create runs: the create finishes before berthd exits.
	inFlight := make(chan answer, 1)
	createHeld := api.CreateRequest{Spec: webSpec(env, "cmd1", "web-1"), LeaseID: held.ID, PlannedHost: held.Host}
	go func() { inFlight <- b.do("POST", api.PathContainers, adminToken, "create-2", createHeld) }()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(b.logs(), `"msg":"listening"`) || len(engineContainers(t, env, "cmd1")["web-1"]) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the create of web-1 never reached its engine: %s", b.logs())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-b.exited; err != nil {
		t.Fatalf("berthd after SIGTERM: %v; %s", err, b.logs())
	}
	finished := decodeAs[backend.ContainerState](t, <-inFlight, http.StatusCreated)
	if !finished.Running || finished.Ref.Host != held.Host {
		t.Errorf("the create running at SIGTERM answered %+v, want it running on %s", finished.Ref, held.Host)
	}
	if !strings.Contains(b.logs(), `"msg":"stopped"`) {
		t.Errorf("no clean stop in the log: %s", b.logs())
	}

	b = start(t, http.DefaultClient, vars)
	b.waitReady(t)
	third := webSpec(env, "cmd1", "web-2")
	planned := decodeAs[api.Lease](t, b.do("POST", api.PathLeases, adminToken, "lease-3", api.LeaseRequest{Spec: third}), http.StatusOK)
	leases := decodeAs[api.LeaseList](t, b.do("GET", api.PathLeases, adminToken, "", nil), http.StatusOK)
	if len(leases.Leases) != 1 || leases.Leases[0].ID != planned.ID || leases.Leases[0].Holder != "admin" {
		t.Errorf("leases after restart = %+v, want only %s, held by admin", leases.Leases, planned.ID)
	}
	usage := decodeAs[backend.PoolUsage](t, b.do("GET", api.PoolUsagePath("cmd1"), adminToken, "", nil), http.StatusOK)
	for _, h := range usage.Hosts {
		want := 0
		for _, host := range []string{lease.Host, held.Host} {
			if h.Name == host {
				want++
			}
		}
		if h.Containers != want {
			t.Errorf("after restart %s holds %d containers, want %d", h.Name, h.Containers, want)
		}
	}
	// The create that ran through the SIGTERM is answered from the store.
	if again := b.do("POST", api.PathContainers, adminToken, "create-2", createHeld); !again.replay || decodeAs[backend.ContainerState](t, again, http.StatusCreated).Ref.ContainerID != finished.Ref.ContainerID {
		t.Errorf("repeat of the create that ran through SIGTERM: %d %s, want its answer replayed", again.status, again.body)
	}
	// A repeat of the create from before the restart is answered from the store.
	again := b.do("POST", api.PathContainers, adminToken, "create-1", api.CreateRequest{Spec: webSpec(env, "cmd1", "web-0"), LeaseID: lease.ID, PlannedHost: lease.Host})
	if got := decodeAs[backend.ContainerState](t, again, http.StatusCreated); got.Ref.ContainerID != state.Ref.ContainerID || !again.replay {
		t.Errorf("repeat after restart = %s (replay %v), want the first answer replayed", got.Ref.ContainerID, again.replay)
	}
}

// berthd killed with SIGKILL while creates run, restarted at once: every
// create, repeated with its key, converges to exactly one container; what
// was acknowledged before the kill is what the repeat answers; the ledger
// matches the engines.
func TestKill9DuringCreates(t *testing.T) {
	env := testenv.Require(t)
	cleanPool(t, env, "cmd2")
	dataDir := t.TempDir()
	tokens := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(tokens, []byte(`[{"name": "ci", "sha256": "`+sha(adminToken)+`", "role": "admin"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--data-dir", dataDir, "--engines", enginesFile(t, env), "--tokens", tokens}
	b := start(t, http.DefaultClient, nil, args...)
	b.waitReady(t)
	decodeAs[backend.PoolStatus](t, b.settle(t, "PUT", api.PoolPath("cmd2"), "pool", testPool(env, "cmd2", 4, 34200)), http.StatusOK)

	const n = 12
	leases := make([]api.Lease, n)
	for i := range leases {
		leases[i] = decodeAs[api.Lease](t, b.do("POST", api.PathLeases, adminToken, fmt.Sprintf("lease-%d", i), api.LeaseRequest{Spec: webSpec(env, "cmd2", fmt.Sprintf("w%d", i))}), http.StatusOK)
	}
	create := func(b *berthd, i int) answer {
		return b.do("POST", api.PathContainers, adminToken, fmt.Sprintf("create-%d", i), api.CreateRequest{
			Spec: webSpec(env, "cmd2", fmt.Sprintf("w%d", i)), LeaseID: leases[i].ID, PlannedHost: leases[i].Host})
	}
	acked := killDuringCreates(t, b, n, func(i int) answer { return create(b, i) })

	b = start(t, http.DefaultClient, nil, args...)
	b.waitReady(t)
	ackedCount := 0
	for i := range n {
		final := b.settle(t, "POST", api.PathContainers, fmt.Sprintf("create-%d", i), api.CreateRequest{
			Spec: webSpec(env, "cmd2", fmt.Sprintf("w%d", i)), LeaseID: leases[i].ID, PlannedHost: leases[i].Host})
		state := decodeAs[backend.ContainerState](t, final, http.StatusCreated)
		if state.Ref.Host != leases[i].Host {
			t.Errorf("w%d landed on %s, its lease showed %s", i, state.Ref.Host, leases[i].Host)
		}
		if acked[i].status == http.StatusCreated {
			ackedCount++
			first := decodeAs[backend.ContainerState](t, acked[i], http.StatusCreated)
			if first.Ref.ContainerID != state.Ref.ContainerID || !final.replay {
				t.Errorf("w%d: acknowledged %s before the kill, answered %s after (replay %v)", i, first.Ref.ContainerID, state.Ref.ContainerID, final.replay)
			}
		}
	}
	t.Logf("%d of %d creates acknowledged before the kill", ackedCount, n)
	perHost := oneEach(t, env, "cmd2", n)
	usage := decodeAs[backend.PoolUsage](t, b.do("GET", api.PoolUsagePath("cmd2"), adminToken, "", nil), http.StatusOK)
	for _, h := range usage.Hosts {
		if h.Containers != perHost[h.Name] || h.Reserved.MilliCPU != int64(perHost[h.Name])*250 {
			t.Errorf("ledger on %s: %d containers, %d millicores; the engine has %d containers", h.Name, h.Containers, h.Reserved.MilliCPU, perHost[h.Name])
		}
	}
	if held := decodeAs[api.LeaseList](t, b.do("GET", api.PathLeases, adminToken, "", nil), http.StatusOK); len(held.Leases) != 0 {
		t.Errorf("leases still held after every create bound: %+v", held.Leases)
	}
}

// killDuringCreates runs n creates at once, kills b with SIGKILL as soon
// as one is acknowledged, and returns every answer once all are back.
func killDuringCreates(t *testing.T, b *berthd, n int, create func(i int) answer) []answer {
	t.Helper()
	acked := make([]answer, n)
	var wg sync.WaitGroup
	firstAck := make(chan struct{})
	var once sync.Once
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acked[i] = create(i)
			if acked[i].status == http.StatusCreated {
				once.Do(func() { close(firstAck) })
			}
		}()
	}
	select {
	case <-firstAck:
	case <-time.After(2 * time.Minute):
		t.Fatalf("no create finished: %s", b.logs())
	}
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-b.exited; err == nil {
		t.Fatal("berthd exited cleanly after SIGKILL")
	}
	wg.Wait()
	return acked
}

func TestFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--engines", "e.json"}, "--data-dir"},
		{[]string{"serve", "--data-dir", "d"}, "--engines"},
		{[]string{"serve", "--data-dir", "d", "--engines", "e", "--tls-cert", "c"}, "go together"},
		{[]string{"serve", "--store", "etcd", "--engines", "e"}, "--etcd-endpoints"},
		{[]string{"serve", "--store", "zk", "--engines", "e"}, "want bolt or etcd"},
		{[]string{"serve", "--store", "etcd", "--etcd-endpoints", "http://127.0.0.1:1", "--leader-ttl", "1s", "--engines", "e"}, "minimum"},
		{[]string{"run"}, "usage"},
	} {
		out, err := exec.Command(binary, c.args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("berthd %v: %v, %s; want a failure mentioning %q", c.args, err, out, c.want)
		}
	}
	out, err := exec.Command(binary, "serve", "--data-dir", t.TempDir(), "--engines", "/nonexistent.json").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "BERTHD_ADMIN_TOKEN") {
		t.Errorf("berthd without tokens: %v, %s; want it to ask for --tokens or BERTHD_ADMIN_TOKEN", err, out)
	}
}
