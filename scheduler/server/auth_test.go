package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/berthsh/terraform-provider-berth/internal/testenv"
	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
	"github.com/berthsh/terraform-provider-berth/scheduler/store"
)

func TestAuth(t *testing.T) {
	env := testenv.Require(t)
	ts := startServer(t, env, store.NewMemory(), Config{}, "auth-a")
	ts.applyTestPool(t, "auth-a", 4, 33000)
	ts.applyTestPool(t, "auth-b", 4, 33150)
	lease := api.LeaseRequest{Spec: webSpec(env, "auth-b", "web-0")}

	for name, token := range map[string]string{"no token": "", "wrong token": "not-a-token-0123456789", "digest as token": digestHex(adminToken)} {
		for _, r := range []response{
			ts.call(t, "GET", api.PoolPath("auth-a"), token, "", nil),
			ts.call(t, "GET", api.PoolPath("no-such-pool"), token, "", nil),
			ts.call(t, "POST", api.PathLeases, token, newKey(), lease),
		} {
			if r.status != http.StatusUnauthorized || r.errorCode() != api.CodeUnauthorized {
				t.Errorf("%s: %s, want 401 unauthorized", name, r)
			}
			if strings.Contains(string(r.body), "auth-") || strings.Contains(string(r.body), "pool") {
				t.Errorf("%s: the 401 says something about pools: %s", name, r.body)
			}
		}
	}
	// The same 401 for an existing and a missing pool.
	a, b := ts.call(t, "GET", api.PoolPath("auth-a"), "", "", nil), ts.call(t, "GET", api.PoolPath("nope"), "", "", nil)
	if string(a.body) != string(b.body) {
		t.Errorf("401 bodies differ for an existing and a missing pool: %s vs %s", a.body, b.body)
	}

	// A deploy token outside its pools: 403; inside: allowed.
	if r := ts.call(t, "POST", api.PathLeases, deployToken, newKey(), lease); r.status != http.StatusForbidden || r.errorCode() != api.CodeForbidden {
		t.Errorf("deploy token outside its pools: %s, want 403", r)
	}
	if r := ts.call(t, "GET", api.PoolUsagePath("auth-b"), deployToken, "", nil); r.status != http.StatusForbidden {
		t.Errorf("deploy token reading a pool outside its scope: %s, want 403", r)
	}
	inside := api.LeaseRequest{Spec: webSpec(env, "auth-a", "web-0")}
	got := must[api.Lease](t, ts.call(t, "POST", api.PathLeases, deployToken, newKey(), inside), http.StatusOK)
	if got.Holder != "ci-team-a" || got.Host == "" {
		t.Errorf("lease taken by the deploy token = %+v, want holder ci-team-a and a host", got)
	}
	// Deploy may not manage pools; read may not deploy.
	if r := ts.call(t, "PUT", api.PoolPath("auth-a"), deployToken, newKey(), backend.PoolSpec{Name: "auth-a"}); r.status != http.StatusForbidden {
		t.Errorf("deploy token applying a pool: %s, want 403", r)
	}
	if r := ts.call(t, "POST", api.PathLeases, readToken, newKey(), inside); r.status != http.StatusForbidden {
		t.Errorf("read token taking a lease: %s, want 403", r)
	}
	if r := ts.call(t, "GET", api.PathUsage, readToken, "", nil); r.status != http.StatusOK {
		t.Errorf("read token reading usage: %s, want 200", r)
	}
	// The pool list shows a scoped token only its pools.
	list := must[api.PoolList](t, ts.call(t, "GET", api.PathPools, deployToken, "", nil), http.StatusOK)
	if len(list.Pools) != 1 || list.Pools[0].Spec.Name != "auth-a" {
		t.Errorf("pools listed for the deploy token: %+v, want auth-a only", list.Pools)
	}
	leases := must[api.LeaseList](t, ts.call(t, "GET", api.PathLeases, readToken, "", nil), http.StatusOK)
	if len(leases.Leases) != 1 || leases.Leases[0].Holder != "ci-team-a" {
		t.Errorf("leases listed: %+v, want one, held by ci-team-a", leases.Leases)
	}
}

func TestTokensFile(t *testing.T) {
	tokens, err := LoadTokens(writeTokens(t, "dc1"))
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := tokens.Authenticate(deployToken); !ok || id.Name != "ci-team-a" || id.Role != RoleDeploy || !id.mayUse(RoleDeploy, "dc1") || id.mayUse(RoleDeploy, "dc2") {
		t.Errorf("deploy token = %+v, %v", id, ok)
	}
	if _, ok := tokens.Authenticate(digestHex(deployToken)); ok {
		t.Error("the digest itself authenticates")
	}
	for _, bad := range []string{
		`[{"name": "a", "sha256": "abc", "role": "admin"}]`,
		`[{"name": "a", "sha256": "` + digestHex("x") + `", "role": "root"}]`,
		`[{"name": "a", "sha256": "` + digestHex("x") + `", "role": "admin"}, {"name": "a", "sha256": "` + digestHex("y") + `", "role": "read"}]`,
		`[{"name": "a", "token": "x", "role": "admin"}]`,
		`[]`,
	} {
		path := t.TempDir() + "/tokens.json"
		if err := writeFile(path, bad); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadTokens(path); err == nil {
			t.Errorf("LoadTokens(%s) succeeded", bad)
		}
	}
	if _, err := AdminToken("short"); err == nil {
		t.Error("a short admin token was accepted")
	}
}
