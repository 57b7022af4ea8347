package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/internal/testenv"
	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
	"github.com/berthsh/terraform-provider-berth/scheduler/store"
)

func TestIdempotentCreate(t *testing.T) {
	env := testenv.Require(t)
	st, err := store.OpenBolt(t.TempDir(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ts := startServer(t, env, st, Config{InFlightWait: 100 * time.Millisecond}, "idem")
	ts.applyTestPool(t, "idem", 4, 33600)
	// raw sends one create; create repeats it while it is in flight (the
	// server waits only 100ms for a running first request, less than a
	// create takes).
	raw := func(ctx context.Context, key, name string) response {
		return ts.callCtx(t, ctx, "POST", api.PathContainers, deployToken, key, api.CreateRequest{Spec: webSpec(env, "idem", name)})
	}
	create := func(ctx context.Context, key, name string) response {
		return waitAnswer(t, func() response { return raw(ctx, key, name) })
	}

	// A repeat gets the first answer, marked; another body with the key, 422.
	key := newKey()
	first := must[backend.ContainerState](t, create(context.Background(), key, "a"), http.StatusCreated)
	repeat := create(context.Background(), key, "a")
	again := must[backend.ContainerState](t, repeat, http.StatusCreated)
	if again.Ref.ContainerID != first.Ref.ContainerID || repeat.header.Get(api.HeaderReplay) != "true" {
		t.Errorf("repeat = %+v (replay %q), want the first answer marked as a replay", again.Ref, repeat.header.Get(api.HeaderReplay))
	}
	if r := create(context.Background(), key, "other"); r.status != http.StatusUnprocessableEntity || r.errorCode() != api.CodeIdempotencyKeyReused {
		t.Errorf("same key, other body: %s, want 422", r)
	}
	// Keys are per token: the admin's same key is another request.
	if r := waitAnswer(t, func() response {
		return ts.call(t, "POST", api.PathContainers, adminToken, key, api.CreateRequest{Spec: webSpec(env, "idem", "a")})
	}); r.status != http.StatusConflict || r.errorCode() != api.CodeNameInUse {
		t.Errorf("another token's create of the same name with the same key: %s, want 409 name_in_use", r)
	}

	// In flight: the repeat gets 409 with Retry-After, then the answer.
	key = newKey()
	var wg sync.WaitGroup
	answers := make([]response, 2)
	for i := range answers {
		wg.Add(1)
		go func() { defer wg.Done(); answers[i] = raw(context.Background(), key, "b") }()
	}
	wg.Wait()
	inFlight := 0
	for _, r := range answers {
		if r.status == http.StatusConflict && r.errorCode() == api.CodeInFlight && r.header.Get(api.HeaderRetryAfter) != "" {
			inFlight++
		}
	}
	if inFlight == 0 {
		t.Errorf("two concurrent repeats: %v and %v, want at least one 409 in_flight with Retry-After", answers[0], answers[1])
	}
	settled := create(context.Background(), key, "b")
	if settled.status != http.StatusCreated || settled.header.Get(api.HeaderReplay) != "true" {
		t.Errorf("after the create finished: %s, want 201 replayed", settled)
	}

	// The client drops its connection mid-create: the create finishes, and
	// the repeat gets it, without a second container.
	key = newKey()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	dropped := raw(ctx, key, "c")
	cancel()
	if dropped.status != -1 {
		t.Errorf("the create answered before the client dropped it: %s", dropped)
	}
	resumed := create(context.Background(), key, "c")
	state := must[backend.ContainerState](t, resumed, http.StatusCreated)
	containers := containersOn(t, env, "idem")
	for name, want := range map[string]int{"a": 1, "b": 1, "c": 1} {
		if len(containers[name]) != want {
			t.Errorf("%d containers named %s on the engines, want %d", len(containers[name]), name, want)
		}
	}
	if containers["c"][0].ID != state.Ref.ContainerID {
		t.Errorf("the repeat answered container %s, the engine has %s", state.Ref.ContainerID, containers["c"][0].ID)
	}

	// Lease takes replay too.
	key = newKey()
	takeLease := func() response {
		return waitAnswer(t, func() response {
			return ts.call(t, "POST", api.PathLeases, deployToken, key, api.LeaseRequest{Spec: webSpec(env, "idem", "d")})
		})
	}
	lease := must[api.Lease](t, takeLease(), http.StatusOK)
	replayed := takeLease()
	if got := must[api.Lease](t, replayed, http.StatusOK); got.ID != lease.ID || replayed.header.Get(api.HeaderReplay) != "true" {
		t.Errorf("lease repeat = %+v (replay %q)", got, replayed.header.Get(api.HeaderReplay))
	}
}

// waitAnswer repeats a request while it is in flight.
func waitAnswer(t *testing.T, call func() response) response {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		r := call()
		if r.errorCode() != api.CodeInFlight || time.Now().After(deadline) {
			return r
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A restart keeps held leases (from the store) and bound containers (from
// the engines): the lease is listed again, its capacity held, and a create
// binds it on its host.
func TestRestartKeepsLeases(t *testing.T) {
	env := testenv.Require(t)
	ts, st, dir := startOnDisk(t, env, "rs")
	ts.applyTestPool(t, "rs", 4, 33900)
	held := must[api.Lease](t, ts.call(t, "POST", api.PathLeases, deployToken, newKey(), api.LeaseRequest{Spec: webSpec(env, "rs", "held")}), http.StatusOK)
	boundLease := must[api.Lease](t, ts.call(t, "POST", api.PathLeases, deployToken, newKey(), api.LeaseRequest{Spec: webSpec(env, "rs", "bound")}), http.StatusOK)
	// Created, but the server "crashes" before its bookkeeping: the lease
	// record stays, and the engine has the container.
	if _, err := ts.be.CreateOnLease(context.Background(), webSpec(env, "rs", "bound"), boundLease.ID); err != nil {
		t.Fatal(err)
	}
	ts2 := reopen(t, env, st, dir, "rs")
	leases := must[api.LeaseList](t, ts2.call(t, "GET", api.PathLeases, readToken, "", nil), http.StatusOK)
	if len(leases.Leases) != 1 || leases.Leases[0].ID != held.ID || leases.Leases[0].Host != held.Host || leases.Leases[0].Holder != "ci-team-a" {
		t.Fatalf("leases after restart = %+v, want only %s on %s (the bound one is its container's now)", leases.Leases, held.ID, held.Host)
	}
	if res, ok := ts2.be.Reservation("rs", held.ID); !ok || res.Host != held.Host {
		t.Errorf("the held lease's capacity is not in the rebuilt ledger: %+v, %v", res, ok)
	}
	state := must[backend.ContainerState](t, ts2.call(t, "POST", api.PathContainers, deployToken, newKey(),
		api.CreateRequest{Spec: webSpec(env, "rs", "held"), LeaseID: held.ID, PlannedHost: held.Host}), http.StatusCreated)
	if state.Ref.Host != held.Host || state.ReservationID != held.ID {
		t.Errorf("create after restart = %+v, want on %s with lease %s", state.Ref, held.Host, held.ID)
	}
	// Resuming the bound one's create adopts its container.
	adopted := must[backend.ContainerState](t, ts2.call(t, "POST", api.PathContainers, deployToken, newKey(),
		api.CreateRequest{Spec: webSpec(env, "rs", "bound"), LeaseID: boundLease.ID, PlannedHost: boundLease.Host}), http.StatusCreated)
	if adopted.Ref.Host != boundLease.Host || len(containersOn(t, env, "rs")["bound"]) != 1 {
		t.Errorf("resumed create = %+v; containers named bound: %d, want 1 on %s", adopted.Ref, len(containersOn(t, env, "rs")["bound"]), boundLease.Host)
	}
}

// startOnDisk serves berthd's API on a bbolt store in a new directory.
func startOnDisk(t *testing.T, env *testenv.Env, pools ...string) (*testServer, store.Store, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.OpenBolt(dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return startServer(t, env, st, Config{}, pools...), st, dir
}

// reopen closes st and serves its data directory again, as berthd does
// when it starts after a crash.
func reopen(t *testing.T, env *testenv.Env, st store.Store, dir string, pools ...string) *testServer {
	t.Helper()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := store.OpenBolt(dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = again.Close() })
	return startServer(t, env, again, Config{}, pools...)
}

// berthd crashed while a create on a lease ran: the create had picked
// another host port (the lease's was bound outside Berth), so its
// container holds another reservation than the lease. After the restart
// the lease holds no capacity of its own, and the create's repeat (or a
// rerun's create on that lease) gets that container, not name_in_use.
func TestRestartAdoptsACreateThatPickedAnotherPort(t *testing.T) {
	env := testenv.Require(t)
	ts, st, dir := startOnDisk(t, env, "ra")
	const first, last = 27010, 27019 // below the ephemeral range
	host := applyPortRangePool(t, ts, "ra", first, last)
	web := webSpec(env, "ra", "web")
	lease, held := leaseOnHeldPort(t, ts, web, first)
	made, err := ts.be.CreateOnLease(context.Background(), web, lease.ID) // then the crash: the lease record stays
	held.Close()
	if err != nil {
		t.Fatal(err)
	}
	if made.ReservationID == lease.ID || made.Ports[0].External == first {
		t.Fatalf("created %+v on port %d, want another reservation and port than lease %s's %d", made.Ref, made.Ports[0].External, lease.ID, first)
	}

	ts2 := reopen(t, env, st, dir, "ra")
	if leases := must[api.LeaseList](t, ts2.call(t, "GET", api.PathLeases, readToken, "", nil), http.StatusOK); len(leases.Leases) != 0 {
		t.Errorf("leases after restart = %+v, want none: the container holds the capacity", leases.Leases)
	}
	if got := ledgerReserved(t, ts2, "ra", host); got != 250 {
		t.Errorf("held on %s after restart = %d millicores, want 250 (the container alone)", host, got)
	}
	for _, key := range []string{newKey(), newKey()} { // the repeat, then a rerun's create
		state := must[backend.ContainerState](t, ts2.call(t, "POST", api.PathContainers, deployToken, key,
			api.CreateRequest{Spec: web, LeaseID: lease.ID, PlannedHost: lease.Host}), http.StatusCreated)
		if state.Ref.ContainerID != made.Ref.ContainerID || !state.Running {
			t.Errorf("create after restart = %+v, want container %s, running", state.Ref, made.Ref.ContainerID)
		}
	}
	if n := len(containersOn(t, env, "ra")["web"]); n != 1 {
		t.Errorf("%d containers named web, want 1", n)
	}
}

// berthd crashed while the engine was still making a create's container:
// the restart's ledger rebuild did not see it, so the lease is held again,
// and the create's repeat then meets the container under the name. It is
// this lease's own: the create takes it over and starts it.
func TestRestartTakesOverTheContainerOfAnInterruptedCreate(t *testing.T) {
	env := testenv.Require(t)
	ts, st, dir := startOnDisk(t, env, "rt")
	ts.applyTestPool(t, "rt", 4, 27020)
	web := webSpec(env, "rt", "web")
	lease := must[api.Lease](t, ts.call(t, "POST", api.PathLeases, deployToken, newKey(), api.LeaseRequest{Spec: web}), http.StatusOK)

	ts2 := reopen(t, env, st, dir, "rt")
	eng, err := engineSet(t, env).Get(lease.Host)
	if err != nil {
		t.Fatal(err)
	}
	late, err := eng.CreateContainer(context.Background(), engine.ContainerSpec{
		Pool: "rt", Name: "web", ReservationID: lease.ID, Lease: lease.ID, Image: env.Image,
		MilliCPU: lease.Resources.MilliCPU, MemoryBytes: lease.Resources.MemoryBytes, Ports: lease.Ports,
	})
	if err != nil {
		t.Fatal(err)
	}
	state := must[backend.ContainerState](t, ts2.call(t, "POST", api.PathContainers, deployToken, newKey(),
		api.CreateRequest{Spec: web, LeaseID: lease.ID, PlannedHost: lease.Host}), http.StatusCreated)
	if state.Ref.ContainerID != late || state.Ref.Host != lease.Host || !state.Running {
		t.Errorf("create after restart = %+v, want container %s running on %s", state.Ref, late, lease.Host)
	}
	if n := len(containersOn(t, env, "rt")["web"]); n != 1 {
		t.Errorf("%d containers named web, want 1", n)
	}
}

// Records are written in the binary layout and read back exactly; records
// an earlier berthd wrote as JSON are still read.
func TestIdempotencyRecordLayouts(t *testing.T) {
	created := time.Date(2026, 12, 1, 10, 0, 0, 123, time.UTC)
	for _, rec := range []idemRecord{
		{Digest: sha256.Sum256([]byte("a")), Done: true, Status: http.StatusCreated, Body: []byte(`{"ID":"c1"}`), Created: created},
		{Digest: sha256.Sum256([]byte("b")), Created: created}, // started, no answer yet
	} {
		legacy, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		for layout, data := range map[string][]byte{"binary": rec.encode(), "json": legacy} {
			got, err := decodeRecord(data)
			if err != nil || got.Digest != rec.Digest || got.Done != rec.Done || got.Status != rec.Status ||
				!bytes.Equal(got.Body, rec.Body) || !got.Created.Equal(rec.Created) {
				t.Errorf("%s layout: read back %+v (%v), want %+v", layout, got, err, rec)
			}
		}
	}
	if _, err := decodeRecord([]byte{9, 1, 2}); err == nil {
		t.Error("a record of an unknown layout was read")
	}
}
