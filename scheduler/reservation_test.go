package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestLifecycle(t *testing.T) {
	s, clock := testScheduler(t, Spread, host("node1", 2, 2*gib))
	r := mustReserve(t, s, Request{Key: "k", Name: "web-0", Resources: Resources{MilliCPU: 500, MemoryBytes: 256 * mib}})
	if r.State != Reserved || r.ID == "" || r.Host != "node1" || !r.LeaseExpiry.Equal(clock.Now().Add(time.Minute)) {
		t.Fatalf("reserved: %+v", r)
	}
	clock.Advance(time.Second)
	b, err := s.Bind(r.ID, "c1")
	if err != nil || b.State != Bound || b.ContainerID != "c1" {
		t.Fatalf("bind: %+v %v", b, err)
	}
	if _, err := s.Bind(r.ID, "c1"); err != nil {
		t.Errorf("binding again to the same container: %v", err)
	}
	if _, err := s.Bind(r.ID, "c2"); err == nil {
		t.Error("bound to a second container")
	}
	if got, ok := s.Get(r.ID); !ok || got.State != Bound {
		t.Errorf("get: %+v %v", got, ok)
	}
	if err := s.Release(r.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(r.ID); err != nil {
		t.Errorf("releasing twice: %v", err)
	}
	if u := usageOf(t, s, "node1"); u.Reserved != (Resources{}) || u.Containers != 0 {
		t.Errorf("after release: %+v", u)
	}
	if _, ok := s.Get(r.ID); ok {
		t.Error("a released reservation is still live")
	}
	if _, err := s.Bind(r.ID, "c1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("bind after release: %v", err)
	}
	if _, err := s.Bind("nope", "c1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("bind unknown: %v", err)
	}
	if err := s.RenewLease("nope", 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("renew unknown: %v", err)
	}
}

func TestResize(t *testing.T) {
	s, _ := testScheduler(t, Spread, host("node1", 2, gib))
	r := mustReserve(t, s, Request{Key: "web-0", Name: "web-0", Resources: Resources{MilliCPU: 500, MemoryBytes: 256 * mib}})
	mustReserve(t, s, Request{Resources: Resources{MilliCPU: 1000, MemoryBytes: 512 * mib}})
	// Free: 0.5 CPU, 256MiB; the reservation's own share counts as free.
	if err := s.CheckResize(r.ID, Resources{MilliCPU: 1000, MemoryBytes: 512 * mib}); err != nil {
		t.Errorf("check exact fit: %v", err)
	}
	err := s.CheckResize(r.ID, Resources{MilliCPU: 1000, MemoryBytes: 640 * mib})
	var nf *NoFitError
	if !errors.As(err, &nf) || !nf.Resize || err.Error() != "cannot resize web-0 to 1 CPU, 640MiB: node1: memory 512MiB free" {
		t.Errorf("check too big: %v", err)
	}
	if u := usageOf(t, s, "node1"); u.Reserved.MilliCPU != 1500 {
		t.Errorf("CheckResize changed usage: %+v", u)
	}
	if _, err := s.Resize(r.ID, Resources{MilliCPU: 1600, MemoryBytes: 256 * mib}); err == nil || err.Error() != "cannot resize web-0 to 1.6 CPU, 256MiB: node1: 1 CPU free" {
		t.Errorf("resize too big: %v", err)
	}
	got, err := s.Resize(r.ID, Resources{MilliCPU: 1000, MemoryBytes: 512 * mib})
	if err != nil || got.Resources.MilliCPU != 1000 {
		t.Fatalf("resize: %+v %v", got, err)
	}
	if u := usageOf(t, s, "node1"); u.Reserved != (Resources{MilliCPU: 2000, MemoryBytes: gib}) {
		t.Errorf("after resize: %+v", u)
	}
	// Shrinking always works, even on an overcommitted host.
	s.SetHosts([]Host{host("node1", 1, gib)})
	if _, err := s.Resize(r.ID, Resources{MilliCPU: 900, MemoryBytes: 512 * mib}); err != nil {
		t.Errorf("shrink on an overcommitted host: %v", err)
	}
	if _, err := s.Resize(r.ID, Resources{MilliCPU: -1}); err == nil {
		t.Error("negative resize accepted")
	}
	if err := s.Release(r.ID); err != nil {
		t.Fatal(err)
	}
	if u := usageOf(t, s, "node1"); u.Reserved != (Resources{MilliCPU: 1000, MemoryBytes: 512 * mib}) {
		t.Errorf("release after resize returned the wrong amount: %+v", u)
	}
	if _, err := s.Resize(r.ID, Resources{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("resize released: %v", err)
	}
}

func TestRestoreRebuildsTheLedger(t *testing.T) {
	s, _ := testScheduler(t, Spread, host("node1", 2, 2*gib), host("node2", 2, 2*gib))
	observed := []Reservation{
		{ID: "r-a", Key: "dc1/web-0", Name: "web-0", Host: "node1", Resources: Resources{MilliCPU: 1500, MemoryBytes: gib}, SpreadGroup: "web", ContainerID: "c0",
			Ports: []PortBinding{{Internal: 80, External: 30000}}},
		{ID: "r-b", Key: "dc1/web-1", Name: "web-1", Host: "node1", Resources: Resources{MilliCPU: 1500, MemoryBytes: gib}, SpreadGroup: "web", ContainerID: "c1"},
		{Key: "dc1/db", Name: "db", Host: "node2", Resources: Resources{MilliCPU: 500}, ContainerID: "c2", Ports: []PortBinding{{Internal: 5432, External: 5432, Protocol: "tcp"}}},
	}
	// Restored concurrently, twice each (a rebuild racing itself).
	var wg sync.WaitGroup
	got := make([]Reservation, 2*len(observed))
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.Restore(observed[i%len(observed)])
			if err != nil {
				t.Error(err)
			}
			got[i] = r
		}()
	}
	wg.Wait()
	for i, r := range got[:len(observed)] {
		if r.ID != got[i+len(observed)].ID || r.State != Bound || r.Host != observed[i].Host {
			t.Errorf("restore %d: %+v vs %+v", i, r, got[i+len(observed)])
		}
	}
	if got[0].ID != "r-a" || got[2].ID == "" {
		t.Errorf("ids: %q %q", got[0].ID, got[2].ID)
	}
	// node1 is overcommitted (3 CPU on 2): reality wins, it fits nothing new.
	if u := usageOf(t, s, "node1"); u.Reserved.MilliCPU != 3000 || u.Containers != 2 || u.Free.MilliCPU != 0 || fmt.Sprint(u.Ports) != "[30000]" {
		t.Errorf("node1: %+v", u)
	}
	for range 3 {
		r := mustReserve(t, s, Request{Ports: []PortRequest{{Internal: 80}}, SpreadGroup: "web"})
		if r.Host != "node2" {
			t.Fatalf("placed on overcommitted %s", r.Host)
		}
	}
	if _, err := s.Reserve(context.Background(), Request{Host: "node2", Ports: []PortRequest{{Internal: 1, External: 5432}}}); err == nil {
		t.Error("a restored port was handed out again")
	}
	if r, ok := s.Lookup("dc1/web-1"); !ok || r.ID != "r-b" || r.ContainerID != "c1" {
		t.Errorf("lookup restored: %+v", r)
	}
	if _, err := s.Restore(Reservation{Host: "node9", Key: "x"}); !errors.Is(err, ErrUnknownHost) {
		t.Errorf("restore on an unknown host: %v", err)
	}
	// A reservation made by Reserve is found again by Restore (same key).
	mine := mustReserve(t, s, Request{Key: "dc1/api", Host: "node2"})
	if again, err := s.Restore(Reservation{Key: "dc1/api", Host: "node2", ContainerID: "c9"}); err != nil || again.ID != mine.ID {
		t.Errorf("restore of a live key: %+v %v", again, err)
	}
}

func TestLeaseExpiryAsksTheVerifier(t *testing.T) {
	v := &fakeVerifier{exists: map[[2]string]bool{}}
	clock := newFakeClock()
	s := New(Config{Clock: clock, Verifier: v, LeaseTTL: time.Minute})
	s.SetHosts([]Host{host("node1", 4, 4*gib)})
	ctx := context.Background()

	orphan := mustReserve(t, s, Request{Key: "orphan", Resources: Resources{MilliCPU: 1000}})   // never bound, no container
	created := mustReserve(t, s, Request{Key: "created", Resources: Resources{MilliCPU: 1000}}) // created, bind lost
	bound := mustReserve(t, s, Request{Key: "bound", Resources: Resources{MilliCPU: 1000}})
	gone := mustReserve(t, s, Request{Key: "gone", Resources: Resources{MilliCPU: 500}})
	renewed := mustReserve(t, s, Request{Key: "renewed", Resources: Resources{MilliCPU: 100}})
	restored, _ := s.Restore(Reservation{Key: "restored", Host: "node1", ContainerID: "c-old", Resources: Resources{MilliCPU: 100}})
	for _, b := range [][2]string{{bound.ID, "c-bound"}, {gone.ID, "c-gone"}} {
		if _, err := s.Bind(b[0], b[1]); err != nil {
			t.Fatal(err)
		}
	}
	v.exists[[2]string{"node1", created.ID}] = true
	v.exists[[2]string{"node1", "c-bound"}] = true

	// Nothing is due yet.
	if freed, err := s.ExpireLeases(ctx); err != nil || len(freed) != 0 || len(v.asked) != 0 {
		t.Fatalf("before expiry: freed %v, asked %v, err %v", freed, v.asked, err)
	}
	clock.Advance(30 * time.Second)
	if err := s.RenewLease(renewed.ID, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	clock.Advance(31 * time.Second)
	freed, err := s.ExpireLeases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{orphan.ID: true, gone.ID: true}
	if len(freed) != 2 || !want[freed[0]] || !want[freed[1]] {
		t.Errorf("freed %v, want orphan and gone", freed)
	}
	asked := map[[2]string]bool{}
	for _, a := range v.asked {
		asked[a] = true
	}
	for _, a := range [][2]string{{"node1", orphan.ID}, {"node1", created.ID}, {"node1", "c-bound"}, {"node1", "c-gone"}} {
		if !asked[a] {
			t.Errorf("verifier not asked about %v (asked %v)", a, v.asked)
		}
	}
	if len(v.asked) != 4 {
		t.Errorf("asked %v: the renewed and the restored (no lease) must not be asked", v.asked)
	}
	for _, id := range []string{created.ID, bound.ID, renewed.ID, restored.ID} {
		if _, ok := s.Get(id); !ok {
			t.Errorf("%s freed although its container exists or its lease holds", id)
		}
	}
	if u := usageOf(t, s, "node1"); u.Reserved.MilliCPU != 2200 {
		t.Errorf("usage after expiry: %+v", u)
	}
	// Confirmed ones got a new lease: nothing is due right after.
	v.asked = nil
	if freed, _ := s.ExpireLeases(ctx); len(freed) != 0 || len(v.asked) != 0 {
		t.Errorf("re-asked at once: freed %v asked %v", freed, v.asked)
	}
	// A failing verifier frees nothing.
	clock.Advance(time.Hour)
	v.err = errors.New("engine unreachable")
	freed, err = s.ExpireLeases(ctx)
	if err == nil || len(freed) != 0 {
		t.Errorf("verifier error: freed %v, err %v", freed, err)
	}
	if _, err := New(Config{}).ExpireLeases(ctx); !errors.Is(err, ErrNoVerifier) {
		t.Errorf("no verifier: %v", err)
	}
}

func TestHostIsACopyWithHealth(t *testing.T) {
	h := host("node1", 2, gib)
	h.Labels = map[string]string{"zone": "a"}
	s, _ := testScheduler(t, Spread, h)
	s.SetHealthy("node1", false)
	got, ok := s.Host("node1")
	if !ok || got.Capacity != h.Capacity || got.Healthy || got.Labels["zone"] != "a" {
		t.Fatalf("Host(node1) = %+v, %v", got, ok)
	}
	got.Labels["zone"] = "changed"
	if again, _ := s.Host("node1"); again.Labels["zone"] != "a" {
		t.Error("changing the returned labels changed the scheduler's host")
	}
	if _, ok := s.Host("node9"); ok {
		t.Error("Host(node9) found a host that does not exist")
	}
}

func TestRekeyMovesTheKey(t *testing.T) {
	s, _ := testScheduler(t, Spread, host("node1", 2, 2*gib))
	lease, err := s.Reserve(context.Background(), Request{Key: "lease:dc1/web-0/f1", Name: "web-0", Resources: Resources{MilliCPU: 500}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve(context.Background(), Request{Key: "dc1/web-1", Name: "web-1", Resources: Resources{MilliCPU: 500}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rekey(lease.ID, "dc1/web-1"); !errors.Is(err, ErrKeyTaken) {
		t.Errorf("rekey onto a held key: %v, want ErrKeyTaken", err)
	}
	moved, err := s.Rekey(lease.ID, "dc1/web-0")
	if err != nil || moved.ID != lease.ID || moved.Key != "dc1/web-0" {
		t.Fatalf("rekey = %+v, %v", moved, err)
	}
	if got, ok := s.Lookup("dc1/web-0"); !ok || got.ID != lease.ID {
		t.Errorf("lookup by the new key = %+v, %v", got, ok)
	}
	if _, ok := s.Lookup("lease:dc1/web-0/f1"); ok {
		t.Error("the old key still finds the reservation")
	}
	again, err := s.Reserve(context.Background(), Request{Key: "lease:dc1/web-0/f1", Name: "web-0", Resources: Resources{MilliCPU: 500}})
	if err != nil || again.ID == lease.ID {
		t.Errorf("the freed old key gave %+v, %v; want a new reservation", again, err)
	}
	if u := s.Usage()[0]; u.Reserved.MilliCPU != 1500 {
		t.Errorf("reserved %d millicores, want 1500 (rekey moves nothing)", u.Reserved.MilliCPU)
	}
}

func TestRestoreKeepsAHeldLeaseReserved(t *testing.T) {
	s, _ := testScheduler(t, Spread, host("node1", 2, 2*gib))
	held, err := s.Restore(Reservation{ID: "r-lease", Key: "lease:k", Name: "web", Host: "node1", Resources: Resources{MilliCPU: 500}, State: Reserved})
	if err != nil || held.State != Reserved {
		t.Fatalf("restore of a held lease = %+v, %v; want Reserved", held, err)
	}
	bound, err := s.Bind("r-lease", "c1")
	if err != nil || bound.State != Bound || bound.ContainerID != "c1" {
		t.Errorf("bind of a restored lease = %+v, %v", bound, err)
	}
}
