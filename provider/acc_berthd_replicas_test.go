package provider

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/etcdtest"
	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/replica"
)

// Replicated berthd under Terraform: host ports 62000-62499 (the replicas
// listen on 62490-62499), etcd members on 23800-23809.

// Two berthd replicas over a real three-member etcd, and a workspace whose
// scheduler_url lists the leader, then the standby. The leader is killed
// with kill -9 during an apply of 24 containers: the apply, or its rerun
// (through the other URL, the first one refusing connections), converges
// to exactly 24 running containers, none doubled and each in the state;
// the new leader's ledger matches the engines, and a replan is empty.
func TestAccBerthdReplicasLeaderKilledDuringApply(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	const pool, n = "pr-replicas", 24
	env := accEnv(t)
	set := accEngines(t, env)
	cleanupPool(t, set, pool)
	cluster, err := etcdtest.Start(ctx, etcdtest.Options{Dir: t.TempDir(), PortFirst: 23800, PortLast: 23809})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Stop(context.Background()) })
	bin, enginesFile := buildBerthd(t, env, t.TempDir())
	storeArgs := []string{"--store", "etcd", "--etcd-endpoints", strings.Join(cluster.Endpoints(), ","),
		"--etcd-prefix", "/" + t.Name() + "/", "--leader-ttl", "2s"}
	leader, standby := rmLeaderOf(ctx, t, runBerthd(t, bin, enginesFile, 62490, storeArgs...), runBerthd(t, bin, enginesFile, 62491, storeArgs...))
	provider := remoteProviderHCL(leader.url()+","+standby.url(), leader.token, "30m")

	owner := newCLIWorkspace(t, env, provider+accPool(pool, "spread", accHosts(env, 1, "512MiB", 62000)))
	t.Cleanup(func() { _, _ = owner.run(context.Background(), "destroy", "-auto-approve", "-no-color") })
	if out, err := owner.run(ctx, "apply", "-auto-approve", "-no-color"); err != nil {
		t.Fatalf("applying the pool through the replicas: %v\n%s", err, out)
	}
	ws := newCLIWorkspace(t, env, provider+
		ccContainers("r", pool, env.Image, n, `cpu = 0.1`, `memory = "32MiB"`, `ports = [{ internal = 8080 }]`,
			`healthcheck = { test = ["CMD", "/app", "healthcheck"], interval = "1s" }`))
	t.Cleanup(func() { _, _ = ws.run(context.Background(), "destroy", "-auto-approve", "-no-color") })

	apply, before := ccStartApplyUntil(ctx, t, ws, set, pool, 6, "-auto-approve", "-no-color", "-parallelism=6")
	leader.kill9()
	killed := time.Now()
	t.Logf("killed the leader %s with %d containers on the engines", leader.url(), before)
	out, err := apply.wait()
	t.Logf("the apply during the kill ended after %s: %v", time.Since(killed).Round(time.Second), err)
	if err != nil {
		for _, e := range ccErrors(out) {
			t.Logf("  %s", e)
		}
		if rerun := ccApply(ctx, ws); rerun.code != 0 {
			t.Fatalf("rerun after the leader's death exited %d:\n%s", rerun.code, rerun.out)
		}
	}

	if status, h := rmHealth(ctx, standby); status != http.StatusOK || h.Role != replica.RoleLeader {
		t.Errorf("the surviving replica says %d %+v, want leader", status, h)
	}
	onEngines := ccOnEngines(ctx, t, set, pool, set.Names()...)
	byName := rmByName(onEngines)
	if len(byName) != n || lcCount(onEngines) != n {
		t.Errorf("engines hold %d containers under %d names, want %d, one each: %v", lcCount(onEngines), len(byName), n, byName)
	}
	for host, cs := range onEngines {
		for _, c := range cs {
			if !c.Running {
				t.Errorf("%s@%s is %s, not running", c.Name, host, c.State)
			}
		}
	}
	if untracked := ccUntracked(onEngines, ccStateContainers(ctx, t, ws)); len(untracked) > 0 {
		t.Errorf("containers that the state does not know: %v", untracked)
	}
	rmCheckLedger(ctx, t, standby, pool, onEngines)
	if code, out := ccExitCode(ctx, t, ws, "plan", "-detailed-exitcode", "-no-color"); code != 0 {
		t.Errorf("replan exited %d, want 0 (no changes):\n%s", code, out)
	}
}

// rmHealth is a replica's /healthz answer.
func rmHealth(ctx context.Context, b *berthdProc) (int, replica.Health) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.url()+api.PathHealthz, nil)
	if err != nil {
		return -1, replica.Health{}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1, replica.Health{}
	}
	defer func() { _ = resp.Body.Close() }()
	var h replica.Health
	_ = json.NewDecoder(resp.Body).Decode(&h)
	return resp.StatusCode, h
}

// rmLeaderOf waits until one replica leads, ready, and the other names it.
func rmLeaderOf(ctx context.Context, t *testing.T, a, b *berthdProc) (leader, standby *berthdProc) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		sa, ha := rmHealth(ctx, a)
		sb, hb := rmHealth(ctx, b)
		switch {
		case sa == http.StatusOK && ha.Role == replica.RoleLeader && sb == http.StatusOK && hb.Leader == a.url():
			return a, b
		case sb == http.StatusOK && hb.Role == replica.RoleLeader && sa == http.StatusOK && ha.Leader == b.url():
			return b, a
		}
		if time.Now().After(deadline) {
			t.Fatalf("no settled leader: %s %d %+v; %s %d %+v", a.url(), sa, ha, b.url(), sb, hb)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
