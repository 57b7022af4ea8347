package replica

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/etcdtest"
	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/store"
)

// node is one Replica in this process, served by an httptest server; its
// leader's handler answers with the node's name.
type node struct {
	name    string
	rep     *Replica
	srv     *httptest.Server
	fenced  atomic.Pointer[store.Store] // the store view of its last term as leader
	changes atomic.Int64                // OnLeaderChange calls
	stop    context.CancelFunc
	done    chan struct{}
}

func startNode(t *testing.T, c *etcdtest.Cluster, name string) *node {
	t.Helper()
	st, err := store.OpenEtcd(store.EtcdConfig{Endpoints: c.Endpoints(), Prefix: "/" + t.Name() + "/"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	n := &node{name: name, done: make(chan struct{})}
	var handler atomic.Pointer[http.Handler]
	n.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*handler.Load()).ServeHTTP(w, r) }))
	t.Cleanup(n.srv.Close)
	n.rep, err = New(Config{Store: st, URL: n.srv.URL, TTL: 2 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnLeaderChange: func(bool) { n.changes.Add(1) },
		Lead: func(_ context.Context, fenced store.Store) (http.Handler, func(context.Context) error, error) {
			n.fenced.Store(&fenced)
			return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, name) }),
				func(context.Context) error { return nil }, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	h := n.rep.Handler()
	handler.Store(&h)
	ctx, stop := context.WithCancel(context.Background())
	n.stop = stop
	go func() { _ = n.rep.Run(ctx); close(n.done) }()
	t.Cleanup(func() { stop(); <-n.done })
	return n
}

func (n *node) get(t *testing.T, header string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", n.srv.URL+api.PathPools, nil)
	if header != "" {
		req.Header.Set(headerProxied, header)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (n *node) health(t *testing.T) (int, Health) {
	t.Helper()
	resp, err := http.Get(n.srv.URL + api.PathHealthz)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h Health
	_ = json.NewDecoder(resp.Body).Decode(&h)
	return resp.StatusCode, h
}

// waitFor polls until ok, failing the test after a minute.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Two replicas on a real three-member etcd: the first leads and serves,
// the second says standby naming it and proxies to it (but never proxies
// a request already forwarded); when the leader stops, it resigns, the
// standby leads and serves, and the old leader's fenced store refuses to
// write. etcd takes ports 23820-23829.
func TestLeaderStandbyTakeover(t *testing.T) {
	ctx := context.Background()
	c, err := etcdtest.Start(ctx, etcdtest.Options{Dir: t.TempDir(), PortFirst: 23820, PortLast: 23829})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })

	a := startNode(t, c, "a")
	waitFor(t, "a to lead", func() bool { s, h := a.health(t); return s == http.StatusOK && h.Role == RoleLeader })
	b := startNode(t, c, "b")
	waitFor(t, "b to name a as leader", func() bool {
		s, h := b.health(t)
		return s == http.StatusOK && h.Role == RoleStandby && h.Leader == a.srv.URL
	})
	if status, body := b.get(t, ""); status != http.StatusOK || body != "a" {
		t.Errorf("through the standby: %d %q, want the leader's answer \"a\"", status, body)
	}
	status, body := b.get(t, "http://elsewhere")
	var refusal api.Error
	if status != http.StatusServiceUnavailable || json.Unmarshal([]byte(body), &refusal) != nil || refusal.Code != api.CodeNotReady {
		t.Errorf("a forwarded request reaching the standby: %d %s, want 503 not_ready", status, body)
	}
	old := *a.fenced.Load()
	if _, err := old.Commit(ctx, store.Op{Bucket: "b", Key: "by-a", Value: []byte("1")}); err != nil {
		t.Fatalf("the leader's fenced store: %v", err)
	}

	a.stop()
	<-a.done
	waitFor(t, "b to lead", func() bool { s, h := b.health(t); return s == http.StatusOK && h.Role == RoleLeader })
	if status, body := b.get(t, ""); status != http.StatusOK || body != "b" {
		t.Errorf("the new leader: %d %q, want \"b\"", status, body)
	}
	if _, err := old.Commit(ctx, store.Op{Bucket: "b", Key: "by-a", Value: []byte("2")}); !errors.Is(err, store.ErrFenced) {
		t.Errorf("a commit through the old leader's view after it stepped down: %v, want ErrFenced", err)
	}
	if got := a.changes.Load(); got != 2 {
		t.Errorf("the old leader was told of %d leadership changes, want 2 (gained, lost)", got)
	}
}
