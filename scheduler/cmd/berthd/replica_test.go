package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/etcdtest"
	"github.com/berthsh/terraform-provider-berth/internal/promtest"
	"github.com/berthsh/terraform-provider-berth/internal/testenv"
	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
	"github.com/berthsh/terraform-provider-berth/scheduler/replica"
)

// startEtcd runs a real three-member etcd cluster for one test.
func startEtcd(t *testing.T) *etcdtest.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // a first build of etcd included
	defer cancel()
	c, err := etcdtest.Start(ctx, etcdtest.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return c
}

// replicaSet is a real three-member etcd cluster, two berthd replicas on
// it with the same flags (each listening on a port of its own), and a pool
// applied through the standby.
type replicaSet struct {
	env             *testenv.Env
	etcd            *etcdtest.Cluster
	args            []string // every replica's flags
	all             []*berthd
	leader, standby *berthd
}

func startReplicas(t *testing.T, pool string, slots, portBase int) *replicaSet {
	t.Helper()
	rs := &replicaSet{env: testenv.Require(t)}
	cleanPool(t, rs.env, pool)
	rs.etcd = startEtcd(t)
	args := []string{"--store", "etcd", "--etcd-endpoints", strings.Join(rs.etcd.Endpoints(), ","), "--etcd-prefix", "/" + t.Name() + "/",
		"--leader-ttl", "2s", "--engines", enginesFile(t, rs.env)}
	vars := []string{"BERTHD_ADMIN_TOKEN=" + adminToken}
	rs.args = args
	rs.args = args
	rs.all = []*berthd{start(t, http.DefaultClient, vars, args...), start(t, http.DefaultClient, vars, args...)}
	var standbys []*berthd
	rs.leader, standbys = leaderOf(t, rs.all...)
	rs.standby = standbys[0]
	decodeAs[backend.PoolStatus](t, rs.standby.settle(t, "PUT", api.PoolPath(pool), "pool", testPool(rs.env, pool, slots, portBase)), http.StatusOK)
	return rs
}

func (b *berthd) health(t *testing.T) (int, replica.Health) {
	t.Helper()
	resp, err := b.client.Get(b.url + api.PathHealthz)
	if err != nil {
		return -1, replica.Health{}
	}
	defer resp.Body.Close()
	var h replica.Health
	_ = json.NewDecoder(resp.Body).Decode(&h)
	return resp.StatusCode, h
}

// leaderOf waits until one of the replicas says it leads and is ready,
// and the others name it as their leader.
func leaderOf(t *testing.T, replicas ...*berthd) (leader *berthd, others []*berthd) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		leader, others = nil, nil
		for _, b := range replicas {
			status, h := b.health(t)
			switch {
			case status == http.StatusOK && h.Role == replica.RoleLeader:
				leader = b
			case status == http.StatusOK && h.Role == replica.RoleStandby:
				others = append(others, b)
			}
		}
		if leader != nil && len(others) == len(replicas)-1 {
			settled := true
			for _, o := range others {
				if _, h := o.health(t); h.Leader != leader.url {
					settled = false
				}
			}
			if settled {
				return leader, others
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	var states []string
	for _, b := range replicas {
		status, h := b.health(t)
		states = append(states, fmt.Sprintf("%s: %d %+v", b.url, status, h))
	}
	t.Fatalf("no settled leader among the replicas: %s", strings.Join(states, "; "))
	return nil, nil
}

// Two replicas over a real three-member etcd: one leads, the other says
// standby and proxies; the leader is killed with SIGKILL while creates
// run through the standby; the standby takes over, rebuilds, and every
// create, repeated with its key through it, converges to exactly one
// container, the ledger matching the engines.
func TestReplicasKill9LeaderDuringCreates(t *testing.T) {
	rs := startReplicas(t, "rep1", 4, 61000)
	env, leader, standby := rs.env, rs.leader, rs.standby
	const n = 12
	leases := make([]api.Lease, n)
	for i := range leases {
		leases[i] = decodeAs[api.Lease](t, standby.do("POST", api.PathLeases, adminToken, fmt.Sprintf("lease-%d", i), api.LeaseRequest{Spec: webSpec(env, "rep1", fmt.Sprintf("w%d", i))}), http.StatusOK)
	}
	createReq := func(i int) api.CreateRequest {
		return api.CreateRequest{Spec: webSpec(env, "rep1", fmt.Sprintf("w%d", i)), LeaseID: leases[i].ID, PlannedHost: leases[i].Host}
	}
	killDuringCreates(t, leader, n, func(i int) answer {
		return standby.do("POST", api.PathContainers, adminToken, fmt.Sprintf("create-%d", i), createReq(i))
	})
	killed := time.Now()

	for i := range n {
		final := standby.settle(t, "POST", api.PathContainers, fmt.Sprintf("create-%d", i), createReq(i))
		state := decodeAs[backend.ContainerState](t, final, http.StatusCreated)
		if state.Ref.Host != leases[i].Host {
			t.Errorf("w%d landed on %s, its lease showed %s", i, state.Ref.Host, leases[i].Host)
		}
	}
	t.Logf("all %d creates settled through the new leader %s after the kill", n, time.Since(killed).Round(time.Millisecond))
	if status, h := standby.health(t); status != http.StatusOK || h.Role != replica.RoleLeader {
		t.Errorf("the surviving replica says %d %+v, want leader", status, h)
	}
	if families := scrape(t, standby); promtest.Sum(families, "berth_leader", nil) != 1 || promtest.Sum(families, "berth_leader_changes_total", nil) < 1 {
		t.Errorf("the new leader's metrics: berth_leader %v, berth_leader_changes_total %v; want 1 and at least 1",
			promtest.Sum(families, "berth_leader", nil), promtest.Sum(families, "berth_leader_changes_total", nil))
	}
	perHost := oneEach(t, env, "rep1", n)
	usage := decodeAs[backend.PoolUsage](t, standby.do("GET", api.PoolUsagePath("rep1"), adminToken, "", nil), http.StatusOK)
	for _, h := range usage.Hosts {
		if h.Containers != perHost[h.Name] {
			t.Errorf("new leader's ledger on %s: %d containers; the engine has %d", h.Name, h.Containers, perHost[h.Name])
		}
	}
}

// A leader paused with SIGSTOP loses the leadership once its session's TTL
// passes; the standby takes over. Resumed, the deposed leader writes
// nothing: a write sent to it while it was paused either fails (its
// fenced store refuses it) or, once it has stepped down, is proxied to the
// new leader, which then knows it.
func TestReplicasDeposedLeaderCannotWrite(t *testing.T) {
	rs := startReplicas(t, "rep2", 4, 61200)
	env, leader, standby := rs.env, rs.leader, rs.standby

	if err := leader.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = leader.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	defer resume()
	deadline := time.Now().Add(time.Minute)
	for {
		if status, h := standby.health(t); status == http.StatusOK && h.Role == replica.RoleLeader {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the standby did not take over from the paused leader: %s", standby.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Writes sent to the paused leader wait in its socket's backlog.
	const n = 4
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = leader.do("POST", api.PathLeases, adminToken, fmt.Sprintf("stale-%d", i), api.LeaseRequest{Spec: webSpec(env, "rep2", fmt.Sprintf("s%d", i))})
		}()
	}
	time.Sleep(200 * time.Millisecond)
	resume()
	wg.Wait()

	held := decodeAs[api.LeaseList](t, standby.do("GET", api.PathLeases, adminToken, "", nil), http.StatusOK)
	known := map[string]bool{}
	for _, l := range held.Leases {
		known[l.ID] = true
	}
	refused := 0
	for i, a := range answers {
		switch a.status {
		case http.StatusOK:
			var l api.Lease
			_ = json.Unmarshal(a.body, &l)
			if !known[l.ID] {
				t.Errorf("write %d through the deposed leader answered lease %s, which the new leader does not hold: %s", i, l.ID, a.body)
			}
		case http.StatusServiceUnavailable:
			refused++
			if a.code() != api.CodeNotReady {
				t.Errorf("write %d refused with %s, want %s", i, a.body, api.CodeNotReady)
			}
		default:
			t.Errorf("write %d through the deposed leader: %d %s", i, a.status, a.body)
		}
	}
	t.Logf("%d of %d writes sent to the paused leader refused, the others proxied to the new leader", refused, n)
	// Once it has noticed, the old leader is a standby naming the new one.
	deadline = time.Now().Add(30 * time.Second)
	for {
		status, h := leader.health(t)
		if status == http.StatusOK && h.Role == replica.RoleStandby && h.Leader == standby.url {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the resumed leader says %d %+v, want standby under %s: %s", status, h, standby.url, leader.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// With one etcd member of three stopped, applies go on; with two stopped,
// berthd answers 503 with a message that says why, and creates nothing;
// with the quorum back, it serves again.
func TestReplicasEtcdQuorum(t *testing.T) {
	rs := startReplicas(t, "rep3", 6, 61400)
	env, c, via := rs.env, rs.etcd, rs.standby
	ctx := context.Background()
	defer func() {
		for i, m := range c.Members {
			if m.PID == 0 {
				_ = c.StartMember(ctx, i, false)
			}
		}
	}()

	if err := c.StopMember(ctx, 0); err != nil {
		t.Fatal(err)
	}
	lease := decodeAs[api.Lease](t, via.settle(t, "POST", api.PathLeases, "one-down", api.LeaseRequest{Spec: webSpec(env, "rep3", "one")}), http.StatusOK)
	decodeAs[backend.ContainerState](t, via.settle(t, "POST", api.PathContainers, "create-one", api.CreateRequest{Spec: webSpec(env, "rep3", "one"), LeaseID: lease.ID, PlannedHost: lease.Host}), http.StatusCreated)

	if err := c.StopMember(ctx, 1); err != nil {
		t.Fatal(err)
	}
	refused := via.do("POST", api.PathContainers, adminToken, "create-two", api.CreateRequest{Spec: webSpec(env, "rep3", "two")})
	if refused.status != http.StatusServiceUnavailable || refused.code() != api.CodeNotReady ||
		!strings.Contains(string(refused.body), "etcd") && !strings.Contains(string(refused.body), "leads") {
		t.Errorf("create with two etcd members of three down: %d %s, want 503 saying etcd or the leadership is unavailable", refused.status, refused.body)
	}
	t.Logf("two members down: %d %s", refused.status, refused.body)
	if got := engineContainers(t, env, "rep3"); len(got) != 1 {
		t.Errorf("containers on the engines with the quorum lost: %v, want only the one created before", got)
	}

	if err := c.StartMember(ctx, 1, true); err != nil {
		t.Fatal(err)
	}
	leaderOf(t, rs.all...)
	lease = decodeAs[api.Lease](t, via.settle(t, "POST", api.PathLeases, "back", api.LeaseRequest{Spec: webSpec(env, "rep3", "three")}), http.StatusOK)
	decodeAs[backend.ContainerState](t, via.settle(t, "POST", api.PathContainers, "create-three", api.CreateRequest{Spec: webSpec(env, "rep3", "three"), LeaseID: lease.ID, PlannedHost: lease.Host}), http.StatusCreated)
}
