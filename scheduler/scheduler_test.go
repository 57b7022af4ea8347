package scheduler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestNoFitExplainsEveryHost(t *testing.T) {
	s, _ := testScheduler(t, Spread,
		host("node1", 4, gib, "zone", "a"),
		host("node2", 4, 8*gib, "zone", "c"),
		host("node3", 4, 8*gib, "zone", "b"),
	)
	mustReserve(t, s, Request{Host: "node1", Resources: Resources{MemoryBytes: gib - 120*mib}})
	for range 4 {
		mustReserve(t, s, Request{Host: "node3", SpreadGroup: "web"})
	}
	_, err := s.Reserve(context.Background(), Request{
		Key: "k7", Name: "web-7", Resources: Resources{MilliCPU: 500, MemoryBytes: 256 * mib},
		Constraints: []string{"zone != c"}, SpreadGroup: "web", MaxPerHost: 4,
	})
	var nf *NoFitError
	if !errors.As(err, &nf) {
		t.Fatalf("got %v, want a *NoFitError", err)
	}
	want := "no host fits web-7 (needs 0.5 CPU, 256MiB): node1: memory 120MiB free; node2: constraint zone != c; node3: max_per_host 4 reached for spread group web"
	if err.Error() != want {
		t.Errorf("got  %s\nwant %s", err, want)
	}
	if len(nf.Rejections) != 3 || nf.Rejections[0].Reason != ReasonMemory || nf.Rejections[1].Reason != ReasonConstraint || nf.Rejections[2].Reason != ReasonMaxPerHost {
		t.Errorf("rejections %+v", nf.Rejections)
	}
	if _, ok := s.Lookup("k7"); ok {
		t.Error("a failed placement left its key claimed")
	}
}

func TestNoFitSummarizesLargePools(t *testing.T) {
	var hosts []Host
	for i := range 10000 {
		if i%10 == 0 {
			hosts = append(hosts, host(fmt.Sprintf("n%05d", i), 4, 8*gib, "zone", "b"))
		} else {
			hosts = append(hosts, host(fmt.Sprintf("n%05d", i), 4, 128*mib, "zone", "a"))
		}
	}
	hosts[1].Healthy = false
	s, _ := testScheduler(t, Spread, hosts...)
	_, err := s.Reserve(context.Background(), Request{Name: "web-7", Resources: Resources{MilliCPU: 500, MemoryBytes: 256 * mib}, Constraints: []string{"zone == a"}})
	want := "no host fits web-7 (needs 0.5 CPU, 256MiB): 8,999 hosts: insufficient memory; 1,000 hosts: constraint zone == a; n00001: unhealthy"
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}

func TestNoFitEmptyPool(t *testing.T) {
	s, _ := testScheduler(t, Spread)
	_, err := s.Reserve(context.Background(), Request{Name: "web-1"})
	if err == nil || err.Error() != "no host fits web-1 (needs 0 CPU, 0B): the pool has no hosts" {
		t.Errorf("got %v", err)
	}
}

func TestPinnedHost(t *testing.T) {
	s, _ := testScheduler(t, Spread, host("node1", 1, gib), host("node2", 1, gib), host("node3", 1, gib))
	for range 3 {
		if r := mustReserve(t, s, Request{Host: "node2", Resources: Resources{MilliCPU: 300}}); r.Host != "node2" {
			t.Fatalf("pinned to node2, placed on %s", r.Host)
		}
	}
	_, err := s.Reserve(context.Background(), Request{Name: "db", Host: "node2", Resources: Resources{MilliCPU: 300}})
	want := "no host fits db (needs 0.3 CPU, 0B): node1: not the pinned host node2; node2: 0.1 CPU free; node3: not the pinned host node2"
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	_, err = s.Reserve(context.Background(), Request{Name: "db", Host: "node9"})
	if !errors.Is(err, ErrUnknownHost) || !strings.Contains(err.Error(), `"node9"`) {
		t.Errorf("unknown pinned host: got %v", err)
	}
}

func TestPortsAreDistinctPerHost(t *testing.T) {
	h := host("node1", 100, 100*gib)
	h.Ports = PortRange{Min: 9000, Max: 9002}
	s, _ := testScheduler(t, Spread, h)
	req := func(ports ...PortRequest) Request { return Request{Ports: ports} }
	a := mustReserve(t, s, req(PortRequest{Internal: 80}, PortRequest{Internal: 443}))
	b := mustReserve(t, s, req(PortRequest{Internal: 80}))
	got := []int{a.Ports[0].External, a.Ports[1].External, b.Ports[0].External}
	sorted := slices.Sorted(slices.Values(got))
	if !slices.Equal(sorted, []int{9000, 9001, 9002}) {
		t.Fatalf("assigned %v, want 9000, 9001 and 9002 in some order", got)
	}
	if a.Ports[0].Protocol != "tcp" {
		t.Errorf("protocol %q, want tcp", a.Ports[0].Protocol)
	}
	if _, err := s.Reserve(context.Background(), req(PortRequest{Internal: 80})); err == nil {
		t.Fatal("a fourth port was handed out from a range of three")
	}
	udp := mustReserve(t, s, req(PortRequest{Internal: 53, Protocol: "udp"}))
	if p := udp.Ports[0].External; p < 9000 || p > 9002 {
		t.Errorf("udp got %d, want a port of the full tcp range (udp is its own space)", p)
	}
	mustReserve(t, s, req(PortRequest{Internal: 80, External: 8080}))
	if _, err := s.Reserve(context.Background(), req(PortRequest{Internal: 81, External: 8080})); err == nil {
		t.Fatal("host port 8080 handed out twice")
	}
	if err := s.Release(a.ID); err != nil {
		t.Fatal(err)
	}
	c := mustReserve(t, s, req(PortRequest{Internal: 80}, PortRequest{Internal: 80}))
	reused := slices.Sorted(slices.Values([]int{c.Ports[0].External, c.Ports[1].External}))
	if !slices.Equal(reused, slices.Sorted(slices.Values([]int{a.Ports[0].External, a.Ports[1].External}))) {
		t.Errorf("released ports not reused: got %v, a held %v", c.Ports, a.Ports)
	}
	if got := usageOf(t, s, "node1").Ports; fmt.Sprint(got) != "[8080 9000 9001 9002]" {
		t.Errorf("usage ports %v", got)
	}
}

func TestIdempotentByKeyUnderConcurrency(t *testing.T) {
	s, _ := testScheduler(t, Spread, host("node1", 4, 4*gib), host("node2", 4, 4*gib), host("node3", 4, 4*gib))
	const callers = 64
	ids := make([]string, callers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := s.Reserve(context.Background(), Request{Key: "web-0", Name: "web-0", Resources: Resources{MilliCPU: 100, MemoryBytes: mib}})
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = r.ID
		}()
	}
	close(start)
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("one key, several reservations: %v", ids)
		}
	}
	total := 0
	for _, u := range s.Usage() {
		total += u.Containers
		if u.Reserved.MilliCPU != 100*int64(u.Containers) {
			t.Errorf("%s holds %d millicores for %d containers", u.Host.Name, u.Reserved.MilliCPU, u.Containers)
		}
	}
	if total != 1 {
		t.Fatalf("%d reservations held for one key", total)
	}
	if r, ok := s.Lookup("web-0"); !ok || r.ID != ids[0] {
		t.Errorf("lookup: %+v %v", r, ok)
	}
	// Released, the key is free again and yields a new reservation.
	if err := s.Release(ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Lookup("web-0"); ok {
		t.Error("a released reservation is still live by key")
	}
	if again := mustReserve(t, s, Request{Key: "web-0"}); again.ID == ids[0] {
		t.Error("a released reservation came back")
	}
}

func TestReserveBatchSpreadsAndReportsEach(t *testing.T) {
	s, _ := testScheduler(t, Spread, host("node1", 1, gib), host("node2", 1, gib), host("node3", 1, gib))
	var reqs []Request
	for i := range 6 {
		reqs = append(reqs, Request{Key: fmt.Sprint("web-", i), SpreadGroup: "web", MaxPerHost: 2, Resources: Resources{MilliCPU: 100}})
	}
	reqs = append(reqs, Request{Key: "huge", Name: "huge", Resources: Resources{MilliCPU: 5000}})
	reqs = append(reqs, Request{Key: "web-6", SpreadGroup: "web", MaxPerHost: 2})
	results := s.ReserveBatch(context.Background(), reqs)
	if len(results) != len(reqs) {
		t.Fatalf("%d results for %d requests", len(results), len(reqs))
	}
	perHost := map[string]int{}
	for i, r := range results[:6] {
		if r.Err != nil {
			t.Fatalf("request %d: %v", i, r.Err)
		}
		if r.Reservation.Key != reqs[i].Key {
			t.Errorf("result %d is for %s", i, r.Reservation.Key)
		}
		perHost[r.Reservation.Host]++
	}
	if perHost["node1"] != 2 || perHost["node2"] != 2 || perHost["node3"] != 2 {
		t.Errorf("batch did not spread: %v", perHost)
	}
	var nf *NoFitError
	if !errors.As(results[6].Err, &nf) || nf.Rejections[0].Reason != ReasonCPU {
		t.Errorf("huge: %v", results[6].Err)
	}
	if !errors.As(results[7].Err, &nf) || nf.Rejections[0].Reason != ReasonMaxPerHost {
		t.Errorf("seventh web: %v", results[7].Err)
	}
}

// TestSpreadBalanceUnderConcurrency: N concurrent placements on H identical
// hosts end with per-host counts that differ by at most one. It holds
// because a lost compare-and-swap re-ranks on fresh states.
func TestSpreadBalanceUnderConcurrency(t *testing.T) {
	for _, c := range []struct {
		hosts, placements int
		group             string
	}{{3, 300, "web"}, {5, 101, ""}, {16, 250, "web"}, {7, 64, "db"}} {
		t.Run(fmt.Sprintf("%d_on_%d", c.placements, c.hosts), func(t *testing.T) {
			var hosts []Host
			for i := range c.hosts {
				hosts = append(hosts, host(fmt.Sprint("node", i), 1000, 1000*gib))
			}
			s, _ := testScheduler(t, Spread, hosts...)
			var wg sync.WaitGroup
			work := make(chan int)
			for range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range work {
						if _, err := s.Reserve(context.Background(), Request{Key: fmt.Sprint(i), SpreadGroup: c.group, Resources: Resources{MilliCPU: 100, MemoryBytes: mib}}); err != nil {
							t.Error(err)
						}
					}
				}()
			}
			for i := range c.placements {
				work <- i
			}
			close(work)
			wg.Wait()
			lo, hi := c.placements, 0
			for _, u := range s.Usage() {
				lo, hi = min(lo, u.Containers), max(hi, u.Containers)
			}
			if hi-lo > 1 {
				t.Errorf("per-host counts range %d..%d: %+v", lo, hi, s.Usage())
			}
		})
	}
}

// TestBinpackNeverOpensANewHost places and releases at random and checks
// after each placement that an empty host was taken only when no host in
// use could fit the request.
func TestBinpackNeverOpensANewHost(t *testing.T) {
	hosts := []Host{host("node1", 2, 2*gib), host("node2", 2, 2*gib), host("node3", 4, 4*gib), host("node4", 2, 2*gib)}
	s, _ := testScheduler(t, Binpack, hosts...)
	var live []string
	seed := uint64(7)
	next := func(n int) int { seed = seed*6364136223846793005 + 1442695040888963407; return int(seed>>33) % n }
	for step := range 400 {
		if len(live) > 0 && next(3) == 0 {
			i := next(len(live))
			if err := s.Release(live[i]); err != nil {
				t.Fatal(err)
			}
			live = append(live[:i], live[i+1:]...)
			continue
		}
		need := Resources{MilliCPU: int64(100 * (1 + next(8))), MemoryBytes: int64(1+next(8)) * 64 * mib}
		before := map[string]HostUsage{}
		for _, u := range s.Usage() {
			before[u.Host.Name] = u
		}
		r, err := s.Reserve(context.Background(), Request{Resources: need})
		if err != nil {
			continue
		}
		live = append(live, r.ID)
		if before[r.Host].Containers > 0 {
			continue
		}
		for name, u := range before {
			if u.Containers > 0 && u.Free.MilliCPU >= need.MilliCPU && u.Free.MemoryBytes >= need.MemoryBytes {
				t.Fatalf("step %d: opened empty %s for %+v while %s (in use) had %+v free", step, r.Host, need, name, u.Free)
			}
		}
	}
}

func TestSetHostsKeepsReservations(t *testing.T) {
	s, _ := testScheduler(t, Spread, host("node1", 2, 2*gib), host("node2", 2, 2*gib))
	a := mustReserve(t, s, Request{Host: "node1", Resources: Resources{MilliCPU: 1500, MemoryBytes: gib}, Ports: []PortRequest{{Internal: 80, External: 8080}}})
	b := mustReserve(t, s, Request{Host: "node2", Resources: Resources{MilliCPU: 500}})

	// node1 shrinks below what it holds; node2 leaves; node3 joins.
	s.SetHosts([]Host{host("node1", 1, 2*gib), host("node3", 2, 2*gib)})
	if u := usageOf(t, s, "node1"); u.Reserved.MilliCPU != 1500 || u.Containers != 1 || u.Free.MilliCPU != 0 {
		t.Errorf("node1 after shrink: %+v", u)
	}
	if _, err := s.Reserve(context.Background(), Request{Host: "node1"}); err == nil {
		t.Error("an overcommitted host took a new reservation")
	}
	if len(s.Usage()) != 2 {
		t.Errorf("usage lists %d hosts, want 2", len(s.Usage()))
	}
	if r, ok := s.Get(b.ID); !ok || r.Host != "node2" {
		t.Errorf("reservation on a removed host: %+v %v", r, ok)
	}
	// node2 comes back with its reservation accounted.
	s.SetHosts([]Host{host("node1", 4, 2*gib), host("node2", 2, 2*gib), host("node3", 2, 2*gib)})
	if u := usageOf(t, s, "node2"); u.Reserved.MilliCPU != 500 {
		t.Errorf("node2 re-added: %+v", u)
	}
	if err := s.Release(b.ID); err != nil {
		t.Fatal(err)
	}
	if u := usageOf(t, s, "node2"); u.Reserved.MilliCPU != 0 || u.Containers != 0 {
		t.Errorf("node2 after release: %+v", u)
	}
	if _, err := s.Reserve(context.Background(), Request{Host: "node1", Ports: []PortRequest{{Internal: 80, External: 8080}}}); err == nil {
		t.Error("port 8080 reused after SetHosts")
	}
	if err := s.Release(a.ID); err != nil {
		t.Fatal(err)
	}
	mustReserve(t, s, Request{Host: "node1", Ports: []PortRequest{{Internal: 80, External: 8080}}})
}

func TestSetHealthy(t *testing.T) {
	s, _ := testScheduler(t, Spread, host("node1", 2, 2*gib), host("node2", 2, 2*gib))
	s.SetHealthy("node1", false)
	s.SetHealthy("nodeX", false) // ignored
	for range 4 {
		if r := mustReserve(t, s, Request{}); r.Host != "node2" {
			t.Fatalf("placed on unhealthy %s", r.Host)
		}
	}
	s.SetHealthy("node2", false)
	_, err := s.Reserve(context.Background(), Request{Name: "x"})
	var nf *NoFitError
	if !errors.As(err, &nf) || nf.Rejections[0].Reason != ReasonUnhealthy || nf.Rejections[1].Reason != ReasonUnhealthy {
		t.Fatalf("got %v", err)
	}
	s.SetHealthy("node1", true)
	if r := mustReserve(t, s, Request{}); r.Host != "node1" {
		t.Errorf("placed on %s after node1 recovered", r.Host)
	}
}

func TestSetUnhealthyExplainsWhy(t *testing.T) {
	s, _ := testScheduler(t, Spread, host("node1", 2, 2*gib))
	s.SetUnhealthy("node1", "connection refused")
	_, err := s.Reserve(context.Background(), Request{Name: "x"})
	if err == nil || !strings.Contains(err.Error(), "node1: unhealthy: connection refused") {
		t.Fatalf("got %v, want the cause in the explanation", err)
	}
	s.SetHealthy("node1", true)
	s.SetHealthy("node1", false)
	_, err = s.Reserve(context.Background(), Request{Name: "x"})
	if err == nil || strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("got %v, want the old cause gone once the host recovered", err)
	}
}

func TestReserveHonoursContext(t *testing.T) {
	s, _ := testScheduler(t, Spread, host("node1", 2, 2*gib))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Reserve(ctx, Request{}); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v", err)
	}
}

func TestSamplingBoundsTheWalk(t *testing.T) {
	var hosts []Host
	for i := range 1000 {
		hosts = append(hosts, host(fmt.Sprintf("n%04d", i), 4, 4*gib))
	}
	s, _ := testScheduler(t, Spread, hosts...)
	// With 16 sampled candidates, 1,000 spread placements on 1,000 empty
	// hosts touch many hosts but need not be perfect.
	used := map[string]bool{}
	for range 1000 {
		used[mustReserve(t, s, Request{SpreadGroup: "web"}).Host] = true
	}
	if len(used) < 500 {
		t.Errorf("sampled spread used only %d of 1,000 hosts", len(used))
	}
	for _, u := range s.Usage() {
		if u.Containers > 3 {
			t.Errorf("%s holds %d of a spread group", u.Host.Name, u.Containers)
		}
	}
}

// TestDisksAndDevices: named device ids are handed out once each, in the
// host's order, and come back on release; a restored container keeps its
// ids; volumes hold disk but no container slot; a request that fits
// nowhere says which dimension each host lacks.
func TestDisksAndDevices(t *testing.T) {
	gpuHost := host("node1", 8, 8*gib)
	gpuHost.DeviceIDs = []string{"GPU-a", "GPU-b", "GPU-c"}
	gpuHost.DiskBytes = 20 * gib
	gpuHost.MaxContainers = 1
	countHost := host("node2", 8, 8*gib)
	countHost.Devices = 1
	countHost.DiskBytes = 10 * gib
	s, _ := testScheduler(t, Spread, gpuHost, countHost)

	restored, err := s.Restore(Reservation{Key: "old", Name: "old", Host: "node1", State: Bound, ContainerID: "c1", DeviceIDs: []string{"GPU-b"}})
	if err != nil {
		t.Fatal(err)
	}
	if restored.Devices != 1 {
		t.Errorf("restored with ids %v counts %d devices, want 1", restored.DeviceIDs, restored.Devices)
	}
	// node1 is full of containers (max 1), so the volume shows it takes no slot.
	vol := mustReserve(t, s, Request{Key: "v", Name: "pgdata", Volume: true, DiskBytes: 15 * gib})
	if vol.Host != "node1" || !vol.Volume {
		t.Errorf("15GiB volume on %s (volume %v), want node1: only it has the disk", vol.Host, vol.Volume)
	}
	if u := usageOf(t, s, "node1"); u.Volumes != 1 || u.Containers != 1 || u.DiskBytes != 15*gib || u.Devices != 1 || !slices.Equal(u.DeviceIDs, []string{"GPU-b"}) {
		t.Errorf("node1 usage %+v", u)
	}
	_, err = s.Reserve(context.Background(), Request{Key: "v2", Name: "logs", Volume: true, DiskBytes: 11 * gib})
	if err == nil || err.Error() != "no host fits logs (needs 11GiB disk): node1: disk 5GiB free; node2: disk 10GiB free" {
		t.Errorf("volume that fits nowhere: %v", err)
	}

	s.SetHosts([]Host{withSlots(gpuHost, 0), countHost})
	a := mustReserve(t, s, Request{Key: "a", Name: "a", Devices: 2, Host: "node1"})
	if !slices.Equal(a.DeviceIDs, []string{"GPU-a", "GPU-c"}) {
		t.Errorf("2 gpus on node1 got %v, want the free ones GPU-a, GPU-c", a.DeviceIDs)
	}
	_, err = s.Reserve(context.Background(), Request{Key: "b", Name: "b", Devices: 2, Resources: Resources{MilliCPU: 500, MemoryBytes: 256 * mib}})
	if err == nil || err.Error() != "no host fits b (needs 0.5 CPU, 256MiB, 2 GPUs): node1: gpus 0 free; node2: gpus 1 free" {
		t.Errorf("gpus that fit nowhere: %v", err)
	}
	if err := s.Release(a.ID); err != nil {
		t.Fatal(err)
	}
	b := mustReserve(t, s, Request{Key: "b", Name: "b", Devices: 1, Host: "node1"})
	if !slices.Equal(b.DeviceIDs, []string{"GPU-a"}) {
		t.Errorf("after the release, 1 gpu on node1 got %v, want GPU-a", b.DeviceIDs)
	}
	c := mustReserve(t, s, Request{Key: "c", Name: "c", Devices: 1, Host: "node2"})
	if c.DeviceIDs != nil || c.Devices != 1 {
		t.Errorf("a host without ids hands out a count: %+v", c)
	}
}

func withSlots(h Host, n int) Host {
	h.MaxContainers = n
	return h
}

// TestConcurrentGPUReservationsNeverShareAnID: many goroutines ask for one
// GPU at once; exactly as many as there are ids get one, each a different id.
func TestConcurrentGPUReservationsNeverShareAnID(t *testing.T) {
	var hosts []Host
	for _, name := range []string{"node1", "node2"} {
		h := host(name, 64, 64*gib)
		h.DeviceIDs = []string{"0", "1", "2"}
		hosts = append(hosts, h)
	}
	s, _ := testScheduler(t, Spread, hosts...)
	var wg sync.WaitGroup
	got := make([]Reservation, 40)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = s.Reserve(context.Background(), Request{Key: fmt.Sprint("g", i), Devices: 1})
		}()
	}
	wg.Wait()
	held := map[string]string{}
	for _, r := range got {
		if r.ID == "" {
			continue
		}
		if len(r.DeviceIDs) != 1 {
			t.Fatalf("%s holds ids %v, want one", r.Key, r.DeviceIDs)
		}
		k := r.Host + "/" + r.DeviceIDs[0]
		if other, ok := held[k]; ok {
			t.Errorf("gpu %s given to %s and %s", k, other, r.Key)
		}
		held[k] = r.Key
	}
	if len(held) != 6 {
		t.Errorf("%d gpus handed out, want all 6", len(held))
	}
}
