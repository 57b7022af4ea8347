package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/internal/testenv"
	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
	"github.com/berthsh/terraform-provider-berth/scheduler/store"
)

// Tokens of the test servers.
const (
	adminToken  = "admin-token-0123456789"
	deployToken = "deploy-token-dc-0123456789" // deploy, pools of the test only
	readToken   = "read-token-0123456789"
)

// fakeClock is a settable clock for lease expiry.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type testServer struct {
	*Server
	url   string
	env   *testenv.Env
	clock *fakeClock
	http  *http.Client
}

func digestHex(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// writeTokens writes a tokens.json with the test tokens, deploy scoped to pools.
func writeTokens(t testing.TB, pools ...string) string {
	t.Helper()
	data, err := json.Marshal([]tokenFileEntry{
		{Name: "ops", SHA256: digestHex(adminToken), Role: "admin"},
		{Name: "ci-team-a", SHA256: digestHex(deployToken), Role: "deploy", Pools: pools},
		{Name: "dashboard", SHA256: digestHex(readToken), Role: "read"},
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// engineSet connects to the test engines through berthd's engines.json,
// or to none when env is nil.
func engineSet(t testing.TB, env *testenv.Env) *engine.Set {
	t.Helper()
	var cfgs []engine.Config
	if env != nil {
		path, err := env.WriteBerthdEngines(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if cfgs, err = LoadEngines(path); err != nil {
			t.Fatal(err)
		}
	}
	set, err := engine.NewSet(cfgs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Close() })
	return set
}

// startServer serves berthd's API over env's engines (none when nil) with
// the given store, the deploy token scoped to pools.
func startServer(t testing.TB, env *testenv.Env, st store.Store, cfg Config, pools ...string) *testServer {
	t.Helper()
	tokens, err := LoadTokens(writeTokens(t, pools...))
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: time.Now()}
	cfg.Backend = backend.NewEmbedded(engineSet(t, env))
	cfg.Store, cfg.Tokens, cfg.Clock = st, tokens, clock.Now
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = time.Hour // tests sweep by hand
	}
	hs := httptest.NewUnstartedServer(nil)
	cfg.Backend.ServeAs("http://" + hs.Listener.Addr().String())
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = s.Handler()
	hs.Start()
	t.Cleanup(hs.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return &testServer{Server: s, url: hs.URL, env: env, clock: clock, http: hs.Client()}
}

// response is an answer as the tests look at it.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) errorCode() string {
	var e api.Error
	_ = json.Unmarshal(r.body, &e)
	return e.Code
}

func (r response) String() string {
	return fmt.Sprintf("%d %s", r.status, r.body)
}

// call sends one request; body is marshalled unless it is []byte.
func (ts *testServer) call(t *testing.T, method, path, token, key string, body any) response {
	t.Helper()
	return ts.callCtx(t, context.Background(), method, path, token, key, body)
}

func (ts *testServer) callCtx(t *testing.T, ctx context.Context, method, path, token, key string, body any) response {
	t.Helper()
	var data []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		data = b
	default:
		var err error
		if data, err = json.Marshal(b); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, ts.url+path, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		req.Header.Set(api.HeaderIdempotencyKey, key)
	}
	resp, err := ts.http.Do(req)
	if err != nil {
		return response{status: -1, body: []byte(err.Error())}
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: out}
}

// must decodes a successful answer.
func must[T any](t *testing.T, r response, want int) T {
	t.Helper()
	var v T
	if r.status != want {
		t.Fatalf("status %s, want %d", r, want)
	}
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
	return v
}

var keySeq struct {
	sync.Mutex
	n int
}

// newKey is a fresh Idempotency-Key.
func newKey() string {
	keySeq.Lock()
	defer keySeq.Unlock()
	keySeq.n++
	return fmt.Sprintf("key-%d-%d", time.Now().UnixNano(), keySeq.n)
}

// applyTestPool applies a pool over every engine through the API, each
// host taking `slots` containers of 0.25 CPU, ports from portBase; at the
// end its containers and records are removed.
func (ts *testServer) applyTestPool(t *testing.T, name string, slots, portBase int) {
	t.Helper()
	spec := backend.PoolSpec{Name: name, Strategy: "spread", Hosts: map[string]backend.PoolHostSpec{}}
	for i, e := range ts.env.Engines {
		spec.Hosts[e.Name] = backend.PoolHostSpec{
			Labels:   map[string]string{"zone": fmt.Sprintf("z%d", i+1)},
			MilliCPU: int64(slots) * 250, MemoryBytes: 1 << 30,
			PortMin: portBase + i*50, PortMax: portBase + i*50 + 49,
		}
	}
	key := newKey()
	must[backend.PoolStatus](t, waitAnswer(t, func() response { return ts.call(t, "PUT", api.PoolPath(name), adminToken, key, spec) }), http.StatusOK)
	t.Cleanup(func() {
		ctx := context.Background()
		set := engineSet(t, ts.env)
		for _, host := range set.Names() {
			eng, _ := set.Get(host)
			listed, _ := eng.ListContainers(ctx, name)
			for _, c := range listed {
				_ = eng.Remove(ctx, c.ID)
			}
			_ = eng.DeletePoolRecord(ctx, name)
		}
	})
}

func webSpec(env *testenv.Env, pool, name string) backend.ContainerSpec {
	return backend.ContainerSpec{
		Pool: pool, Name: name, Image: env.Image,
		Resources:   backend.Resources{MilliCPU: 250, MemoryBytes: 16 << 20},
		Ports:       []backend.PortSpec{{Internal: 8080}},
		SpreadGroup: "web",
		Restart:     "no",
		StopTimeout: time.Second,
	}
}

// containersOn lists the pool's containers on every engine, by name.
func containersOn(t *testing.T, env *testenv.Env, pool string) map[string][]engine.Container {
	t.Helper()
	set := engineSet(t, env)
	out := map[string][]engine.Container{}
	for _, host := range set.Names() {
		eng, _ := set.Get(host)
		listed, err := eng.ListContainers(context.Background(), pool)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range listed {
			out[c.Name] = append(out[c.Name], c)
		}
	}
	return out
}

// hostOf finds which engine holds a container id.
func hostOf(t *testing.T, env *testenv.Env, pool, id string) string {
	t.Helper()
	set := engineSet(t, env)
	for _, host := range set.Names() {
		eng, _ := set.Get(host)
		listed, _ := eng.ListContainers(context.Background(), pool)
		for _, c := range listed {
			if c.ID == id {
				return host
			}
		}
	}
	return ""
}
