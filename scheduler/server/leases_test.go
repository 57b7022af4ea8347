package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/testenv"
	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
	"github.com/berthsh/terraform-provider-berth/scheduler/store"
)

func reserved(t *testing.T, ts *testServer, pool, host string) int64 {
	t.Helper()
	usage := must[backend.PoolUsage](t, ts.call(t, "GET", api.PoolUsagePath(pool), readToken, "", nil), http.StatusOK)
	for _, h := range usage.Hosts {
		if h.Name == host {
			return h.Reserved.MilliCPU
		}
	}
	t.Fatalf("host %s not in the usage of %s", host, pool)
	return 0
}

// ledgerReserved is what is held on a host: the containers on its engine
// (usage reads the engines) plus the held leases.
func ledgerReserved(t *testing.T, ts *testServer, pool, host string) int64 {
	t.Helper()
	var total int64
	for _, l := range ts.leases.list(func(l api.Lease) bool { return l.Pool == pool && l.Host == host }) {
		total += l.Resources.MilliCPU
	}
	return total + reserved(t, ts, pool, host)
}

func TestLeasePlanThenApply(t *testing.T) {
	env := testenv.Require(t)
	ts := startServer(t, env, store.NewMemory(), Config{}, "lz")
	ts.applyTestPool(t, "lz", 4, 33300)
	spec := webSpec(env, "lz", "web-0")

	first := must[api.Lease](t, ts.call(t, "POST", api.PathLeases, deployToken, newKey(), api.LeaseRequest{Spec: spec, TTL: 10 * time.Minute}), http.StatusOK)
	if first.Host == "" || first.ID == "" || len(first.Ports) != 1 || first.Ports[0].External == 0 || first.State != api.LeaseHeld {
		t.Fatalf("lease = %+v, want a host, an id and an assigned port", first)
	}
	// The apply process's re-plan: same key, same lease, renewed. The image
	// may only be known at apply: it places nothing.
	ts.clock.advance(time.Minute)
	again := spec
	again.Image = "other:2"
	second := must[api.Lease](t, ts.call(t, "POST", api.PathLeases, deployToken, newKey(), api.LeaseRequest{Spec: again, TTL: 10 * time.Minute}), http.StatusOK)
	if second.ID != first.ID || second.Host != first.Host || second.Ports[0] != first.Ports[0] || !second.Expires.After(first.Expires) || second.Age != time.Minute {
		t.Errorf("re-plan lease = %+v, want %+v renewed, age 1m", second, first)
	}
	listed := must[api.LeaseList](t, ts.call(t, "GET", api.PathLeases+"?pool=lz", readToken, "", nil), http.StatusOK)
	if len(listed.Leases) != 1 || listed.Leases[0].Holder != "ci-team-a" || listed.Leases[0].Age != time.Minute {
		t.Errorf("listed leases = %+v, want one held by ci-team-a, 1m old", listed.Leases)
	}

	state := must[backend.ContainerState](t, ts.call(t, "POST", api.PathContainers, deployToken, newKey(),
		api.CreateRequest{Spec: spec, LeaseID: first.ID, PlannedHost: first.Host}), http.StatusCreated)
	if state.Ref.Host != first.Host || state.ReservationID != first.ID || !state.Running || state.Ports[0].External != first.Ports[0].External {
		t.Errorf("created %+v, want it running on %s with lease %s and port %d", state, first.Host, first.ID, first.Ports[0].External)
	}
	if got := hostOf(t, env, "lz", state.Ref.ContainerID); got != first.Host {
		t.Errorf("the engines have the container on %q, want %s", got, first.Host)
	}
	if r := ts.call(t, "GET", api.LeasePath(first.ID), readToken, "", nil); r.status != http.StatusNotFound || r.errorCode() != api.CodeLeaseNotFound {
		t.Errorf("the bound lease is still listed as held: %s", r)
	}
	if got := reserved(t, ts, "lz", first.Host); got != 250 {
		t.Errorf("reserved on %s = %d, want 250", first.Host, got)
	}
	// A second lease for the same name is refused at plan.
	if r := ts.call(t, "POST", api.PathLeases, deployToken, newKey(), api.LeaseRequest{Spec: spec}); r.status != http.StatusConflict || r.errorCode() != api.CodeNameInUse {
		t.Errorf("lease for a taken name: %s, want 409 name_in_use", r)
	}
	// ... unless it replaces that container.
	bigger := spec
	bigger.Resources.MilliCPU = 500
	if r := ts.call(t, "POST", api.PathLeases, deployToken, newKey(), api.LeaseRequest{Spec: bigger, Replaces: &state.Ref}); r.status != http.StatusOK {
		t.Errorf("lease for the replacement: %s", r)
	}

	read := must[api.ReadResponse](t, ts.call(t, "POST", api.PathContainerRead, readToken, "", api.ReadRequest{Refs: []backend.ContainerRef{
		state.Ref, {Pool: "lz", Name: "gone", Host: first.Host, ContainerID: "0123456789ab"}, {Pool: "lz", Name: "x", Host: "node9", ContainerID: "x"},
	}}), http.StatusOK)
	if len(read.Containers) != 3 || read.Containers[0] == nil || read.Containers[0].Ref.ContainerID != state.Ref.ContainerID || read.Containers[1] != nil || read.Errors[0] != nil || read.Errors[1] != nil || read.Errors[2] == nil {
		t.Errorf("batched read = %+v, want the container, null for the gone one, an error for the unknown host", read)
	}
	found := must[backend.ContainerState](t, ts.call(t, "GET", api.FindPath("lz", "web-0"), readToken, "", nil), http.StatusOK)
	if found.Ref.ContainerID != state.Ref.ContainerID {
		t.Errorf("find = %+v", found)
	}

	// Pool delete is refused while the container remains.
	if r := ts.call(t, "DELETE", api.PoolPath("lz"), adminToken, newKey(), nil); r.status != http.StatusConflict || r.errorCode() != api.CodePoolInUse {
		t.Errorf("deleting a pool in use: %s, want 409 pool_in_use", r)
	}
	stopped := must[backend.ContainerState](t, ts.call(t, "POST", api.PathContainerStop, deployToken, newKey(), api.StopRequest{Current: state, StopTimeout: time.Second}), http.StatusOK)
	if stopped.Running {
		t.Errorf("stopped container still running: %+v", stopped)
	}
	started := must[backend.ContainerState](t, ts.call(t, "POST", api.PathContainerStart, deployToken, newKey(), api.StartRequest{Current: stopped}), http.StatusOK)
	if !started.Running {
		t.Errorf("started container not running: %+v", started)
	}
	plan := must[api.PlanResizeResponse](t, ts.call(t, "POST", api.PathContainerPlanRs, readToken, "", api.ResizeRequest{Current: started, Resources: backend.Resources{MilliCPU: 5000, MemoryBytes: 16 << 20}}), http.StatusOK)
	if plan.Fits || !strings.Contains(plan.Reason, "CPU") {
		t.Errorf("plan of an oversized resize = %+v, want it refused naming CPU", plan)
	}
	resized := must[backend.ContainerState](t, ts.call(t, "POST", api.PathContainerResize, deployToken, newKey(), api.ResizeRequest{Current: started, Resources: backend.Resources{MilliCPU: 500, MemoryBytes: 32 << 20}}), http.StatusOK)
	if resized.Resources.MilliCPU != 500 || reserved(t, ts, "lz", first.Host) != 500 {
		t.Errorf("resized = %+v; reserved %d, want 500", resized.Resources, reserved(t, ts, "lz", first.Host))
	}
	reconfigured := must[backend.ContainerState](t, ts.call(t, "POST", api.PathContainerReconf, deployToken, newKey(),
		api.ReconfigureRequest{Current: resized, Limits: resized.Resources, Restart: "always"}), http.StatusOK)
	if reconfigured.Restart != "always" {
		t.Errorf("reconfigured restart policy = %q, want always", reconfigured.Restart)
	}
	if r := ts.call(t, "POST", api.PathContainerDelete, deployToken, newKey(), api.DeleteRequest{Ref: resized.Ref, StopTimeout: time.Second}); r.status != http.StatusNoContent {
		t.Fatalf("delete: %s", r)
	}
	if len(containersOn(t, env, "lz")) != 0 {
		t.Errorf("containers left after delete: %v", containersOn(t, env, "lz"))
	}
	if r := ts.call(t, "DELETE", api.PoolPath("lz"), adminToken, newKey(), nil); r.status != http.StatusNoContent {
		t.Errorf("deleting the empty pool: %s", r)
	}
}

func TestLeaseExpiry(t *testing.T) {
	env := testenv.Require(t)
	ts := startServer(t, env, store.NewMemory(), Config{}, "exp")
	ts.applyTestPool(t, "exp", 2, 33450)
	take := func(spec backend.ContainerSpec) api.Lease {
		return must[api.Lease](t, ts.call(t, "POST", api.PathLeases, deployToken, newKey(), api.LeaseRequest{Spec: spec, TTL: time.Minute}), http.StatusOK)
	}

	// Released by its holder: capacity back at once; releasing again is a no-op.
	released := take(webSpec(env, "exp", "released"))
	if r := ts.call(t, "DELETE", api.LeasePath(released.ID), deployToken, newKey(), nil); r.status != http.StatusNoContent {
		t.Fatalf("release: %s", r)
	}
	if res, ok := ts.be.Reservation("exp", released.ID); ok {
		t.Errorf("the released lease still holds capacity in the ledger: %+v", res)
	}
	if r := ts.call(t, "DELETE", api.LeasePath(released.ID), deployToken, newKey(), nil); r.status != http.StatusNoContent {
		t.Errorf("second release: %s, want 204", r)
	}

	// A new plan of the same container with other settings supersedes the
	// old plan's lease: only one holds capacity.
	old := take(webSpec(env, "exp", "s"))
	changed := webSpec(env, "exp", "s")
	changed.Resources.MilliCPU = 500
	fresh := take(changed)
	if _, ok := ts.be.Reservation("exp", old.ID); ok || fresh.ID == old.ID {
		t.Errorf("the superseded lease %s still holds capacity (new lease %s)", old.ID, fresh.ID)
	}
	if r := ts.call(t, "DELETE", api.LeasePath(fresh.ID), deployToken, newKey(), nil); r.status != http.StatusNoContent {
		t.Fatalf("release: %s", r)
	}

	// Expired, freed (the engine has no container for it), taken again on
	// the planned host at apply.
	a := take(webSpec(env, "exp", "a"))
	ts.clock.advance(2 * time.Minute)
	ts.leases.sweep(context.Background())
	if _, held := ts.leases.lookup(a.ID); held {
		t.Fatal("an expired lease without a container is still held after the sweep")
	}
	if res, ok := ts.be.Reservation("exp", a.ID); ok {
		t.Errorf("the expired lease still holds capacity in the ledger: %+v", res)
	}
	state := must[backend.ContainerState](t, ts.call(t, "POST", api.PathContainers, deployToken, newKey(),
		api.CreateRequest{Spec: webSpec(env, "exp", "a"), LeaseID: a.ID, PlannedHost: a.Host}), http.StatusCreated)
	if state.Ref.Host != a.Host {
		t.Errorf("retaken lease landed on %s, want the planned %s", state.Ref.Host, a.Host)
	}
	// Its repeat under another key (the answer was lost, or berthd crashed
	// before it): the same container, not name_in_use.
	again := must[backend.ContainerState](t, ts.call(t, "POST", api.PathContainers, deployToken, newKey(),
		api.CreateRequest{Spec: webSpec(env, "exp", "a"), LeaseID: a.ID, PlannedHost: a.Host}), http.StatusCreated)
	if again.Ref.ContainerID != state.Ref.ContainerID {
		t.Errorf("the repeat of a retaken create gave %+v, want container %s", again.Ref, state.Ref.ContainerID)
	}

	// Expired, then its key taken again (the re-plan of a saved plan's
	// apply, in a new process that cannot know the planned host): the new
	// lease is on the old host, though spread now prefers the other one.
	d := take(webSpec(env, "exp", "d"))
	ts.clock.advance(2 * time.Minute)
	ts.leases.sweep(context.Background())
	var crowd []api.Lease // two more members of the group on d's host
	for _, name := range []string{"crowd1", "crowd2"} {
		spec := webSpec(env, "exp", name)
		spec.Host = d.Host
		spec.Resources = backend.Resources{MilliCPU: 10, MemoryBytes: 4 << 20} // room left for d
		crowd = append(crowd, take(spec))
	}
	if again := take(webSpec(env, "exp", "d")); again.Host != d.Host {
		t.Errorf("an expired key taken again landed on %s, want its old host %s", again.Host, d.Host)
	} else if r := ts.call(t, "DELETE", api.LeasePath(again.ID), deployToken, newKey(), nil); r.status != http.StatusNoContent {
		t.Fatalf("release: %s", r)
	}
	for _, lease := range crowd {
		if r := ts.call(t, "DELETE", api.LeasePath(lease.ID), deployToken, newKey(), nil); r.status != http.StatusNoContent {
			t.Fatalf("release: %s", r)
		}
	}

	// Expired, and the planned host filled up meanwhile: the apply asks
	// for a new plan and creates nothing.
	b := take(webSpec(env, "exp", "b"))
	ts.clock.advance(2 * time.Minute)
	ts.leases.sweep(context.Background())
	filler := webSpec(env, "exp", "filler")
	filler.Host = b.Host
	filler.SpreadGroup = ""
	for ledgerReserved(t, ts, "exp", b.Host) < 500 {
		filler.Name += "x"
		take(filler)
	}
	r := ts.call(t, "POST", api.PathContainers, deployToken, newKey(), api.CreateRequest{Spec: webSpec(env, "exp", "b"), LeaseID: b.ID, PlannedHost: b.Host})
	if r.status != http.StatusConflict || r.errorCode() != api.CodeLeaseExpired || !strings.Contains(string(r.body), "plan again") || !strings.Contains(string(r.body), b.Host) {
		t.Errorf("create on an expired lease whose host is full: %s, want 409 lease_expired naming %s and asking for a new plan", r, b.Host)
	}
	if _, ok := containersOn(t, env, "exp")["b"]; ok {
		t.Error("a container was created for the refused create")
	}

	// Expired, but the engine has its container (the create's bookkeeping
	// was lost): capacity stays held.
	c := take(webSpec(env, "exp", "c"))
	bound, err := ts.be.CreateOnLease(context.Background(), webSpec(env, "exp", "c"), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	ts.clock.advance(2 * time.Minute)
	ts.leases.sweep(context.Background())
	if res, ok := ts.be.Reservation("exp", c.ID); !ok || res.ContainerID != bound.Ref.ContainerID {
		t.Errorf("the expiry freed a lease whose container exists: %+v, %v", res, ok)
	}
	if got := reserved(t, ts, "exp", c.Host); got < 250 {
		t.Errorf("reserved on %s = %d, want the container's 250 counted", c.Host, got)
	}
}

// A batch runs each take and release as it would run alone, each with its
// own answer, and commits them with one idempotency record: a repeat of the
// batch is a replay, not a second run.
func TestLeaseBatch(t *testing.T) {
	env := testenv.Require(t)
	ts := startServer(t, env, store.NewMemory(), Config{}, "lb")
	ts.applyTestPool(t, "lb", 1, 33750)
	batch := api.LeaseBatchRequest{}
	for i := range 4 {
		batch.Take = append(batch.Take, api.LeaseRequest{Spec: webSpec(env, "lb", fmt.Sprint("web-", i))})
	}
	batch.Take = append(batch.Take, api.LeaseRequest{Spec: webSpec(env, "elsewhere", "web-0")})
	key := newKey()
	first := ts.call(t, "POST", api.PathLeaseBatch, deployToken, key, batch)
	got := must[api.LeaseBatchResponse](t, first, http.StatusOK)
	hosts := map[string]bool{}
	for i, r := range got.Take[:3] {
		if r.Lease == nil || r.Error != nil || hosts[r.Lease.Host] {
			t.Fatalf("take %d: %+v, want a lease on a host of its own", i, r)
		}
		hosts[r.Lease.Host] = true
	}
	if r := got.Take[3]; r.Lease != nil || r.Error == nil || r.Error.Code != api.CodeNoFit || r.Status != http.StatusConflict {
		t.Errorf("fourth take: %+v, want 409 no_fit (one slot per host)", r)
	}
	if r := got.Take[4]; r.Error == nil || r.Error.Code != api.CodeForbidden || r.Status != http.StatusForbidden {
		t.Errorf("take outside the token's pools: %+v, want 403 forbidden", r)
	}
	stored, err := ts.store.List(context.Background(), bucketLeases, "")
	if err != nil || len(stored) != 3 {
		t.Fatalf("stored leases: %d (%v), want 3", len(stored), err)
	}

	again := ts.call(t, "POST", api.PathLeaseBatch, deployToken, key, batch)
	if again.header.Get(api.HeaderReplay) != "true" || string(again.body) != string(first.body) {
		t.Errorf("repeat: %s (replay %q), want the first answer replayed", again, again.header.Get(api.HeaderReplay))
	}

	freed := got.Take[0].Lease
	next := must[api.LeaseBatchResponse](t, ts.call(t, "POST", api.PathLeaseBatch, deployToken, newKey(),
		api.LeaseBatchRequest{Take: batch.Take[3:4], Release: []string{freed.ID, "r-unknown"}}), http.StatusOK)
	if r := next.Take[0]; r.Lease == nil || r.Lease.Host != freed.Host {
		t.Errorf("take after a release in the same batch: %+v, want a lease on %s (releases run first)", r, freed.Host)
	}
	for i, r := range next.Release {
		if r.Error != nil {
			t.Errorf("release %d: %+v, want released (an unknown lease is already released)", i, r)
		}
	}
}

// TestLeaseCreatePicksAnotherPortWhenItsPortIsTaken: a lease's host port,
// picked by Berth, is bound on the host by something outside Berth when
// the create comes (a loopback client's ephemeral port, say). The create
// picks another free port on the planned host instead of failing.
func TestLeaseCreatePicksAnotherPortWhenItsPortIsTaken(t *testing.T) {
	env := testenv.Require(t)
	ts := startServer(t, env, store.NewMemory(), Config{}, "rp")
	// Below the kernel's ephemeral range and the examples' ranges: nothing
	// else binds these.
	const first, last = 27000, 27009
	host := applyPortRangePool(t, ts, "rp", first, last)
	web := webSpec(env, "rp", "web")
	lease, held := leaseOnHeldPort(t, ts, web, first)
	defer held.Close()
	state := must[backend.ContainerState](t, ts.call(t, "POST", api.PathContainers, deployToken, newKey(),
		api.CreateRequest{Spec: web, LeaseID: lease.ID, PlannedHost: lease.Host}), http.StatusCreated)
	if got := state.Ports; state.Ref.Host != host || len(got) != 1 || got[0].External <= first || got[0].External > last || !state.Running {
		t.Fatalf("created %+v, want it running on %s on a port in %d-%d", state, host, first+1, last)
	}
	if got := reserved(t, ts, "rp", host); got != 250 {
		t.Errorf("reserved on %s = %d, want 250 (the container, no lease left behind)", host, got)
	}
}

// applyPortRangePool applies a pool of the first engine alone, whose host
// ports are first..last, and removes what the test leaves on it.
func applyPortRangePool(t *testing.T, ts *testServer, pool string, first, last int) string {
	t.Helper()
	host := ts.env.Engines[0].Name
	spec := backend.PoolSpec{Name: pool, Strategy: "spread", Hosts: map[string]backend.PoolHostSpec{
		host: {MilliCPU: 1000, MemoryBytes: 1 << 30, PortMin: first, PortMax: last},
	}}
	must[backend.PoolStatus](t, ts.call(t, "PUT", api.PoolPath(pool), adminToken, newKey(), spec), http.StatusOK)
	t.Cleanup(func() {
		eng, _ := engineSet(t, ts.env).Get(host)
		listed, _ := eng.ListContainers(context.Background(), pool)
		for _, c := range listed {
			_ = eng.Remove(context.Background(), c.ID)
		}
		_ = eng.DeletePoolRecord(context.Background(), pool)
	})
	return host
}

// leaseOnHeldPort binds port on the host, outside Berth, then plans spec
// until its lease shows that port (Berth cannot know it is bound: it is no
// container's). The caller closes the listener.
func leaseOnHeldPort(t *testing.T, ts *testServer, spec backend.ContainerSpec, port int) (api.Lease, net.Listener) {
	t.Helper()
	listener, err := net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", port))
	if err != nil {
		t.Fatalf("holding port %d: %v", port, err)
	}
	for attempt := 0; ; attempt++ {
		lease := must[api.Lease](t, ts.call(t, "POST", api.PathLeases, deployToken, newKey(), api.LeaseRequest{Spec: spec}), http.StatusOK)
		if lease.Ports[0].External == port {
			return lease, listener
		}
		if attempt == 200 {
			listener.Close()
			t.Fatalf("200 leases never picked port %d", port)
		}
		if r := ts.call(t, "DELETE", api.LeasePath(lease.ID), deployToken, newKey(), nil); r.status != http.StatusNoContent {
			listener.Close()
			t.Fatalf("releasing lease: %s", r)
		}
	}
}
