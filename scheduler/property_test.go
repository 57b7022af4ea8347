package scheduler

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// checkHost verifies one host state: nothing overcommitted, no port twice,
// no spread group above its max.
func checkHost(st *hostState, maxPerHost int) error {
	h := st.host
	if st.used.MilliCPU > h.Capacity.MilliCPU || st.used.MemoryBytes > h.Capacity.MemoryBytes {
		return fmt.Errorf("%s overcommitted: %+v of %+v", h.Name, st.used, h.Capacity)
	}
	if st.used.MilliCPU < 0 || st.used.MemoryBytes < 0 || st.containers < 0 {
		return fmt.Errorf("%s below zero: %+v, %d containers", h.Name, st.used, st.containers)
	}
	if h.MaxContainers > 0 && st.containers > h.MaxContainers {
		return fmt.Errorf("%s holds %d containers, max %d", h.Name, st.containers, h.MaxContainers)
	}
	for i := 1; i < len(st.ports); i++ {
		if st.ports[i] == st.ports[i-1] {
			return fmt.Errorf("%s hands out port %s twice", h.Name, formatPort(st.ports[i]))
		}
	}
	for _, g := range st.groups {
		if g.n > maxPerHost {
			return fmt.Errorf("%s holds %d of group %s, max %d", h.Name, g.n, g.group, maxPerHost)
		}
	}
	return nil
}

// TestConcurrentReserveReleaseResizeNeverOvercommits hammers a small pool
// from many goroutines and checks the invariants continuously and at the
// end, against the scheduler's states and against the reservations the
// callers hold.
func TestConcurrentReserveReleaseResizeNeverOvercommits(t *testing.T) {
	const (
		workers    = 24
		opsEach    = 400
		maxPerHost = 5
	)
	var hosts []Host
	for i := range 6 {
		h := host(fmt.Sprint("node", i), 4, 4*gib)
		h.MaxContainers = 12
		h.Ports = PortRange{Min: 20000, Max: 20019}
		hosts = append(hosts, h)
	}
	s, _ := testScheduler(t, Spread, hosts...)
	ctx := context.Background()

	// ports maps host/port to the reservation the callers believe holds it.
	// Entries are added after Reserve returns and removed before Release,
	// so two entries for one port mean two live holders.
	var portsMu sync.Mutex
	ports := map[string]string{}
	claimPorts := func(r Reservation) error {
		portsMu.Lock()
		defer portsMu.Unlock()
		for _, p := range r.Ports {
			k := fmt.Sprintf("%s/%d/%s", r.Host, p.External, p.Protocol)
			if other, ok := ports[k]; ok {
				return fmt.Errorf("port %s held by %s and %s", k, other, r.ID)
			}
			ports[k] = r.ID
		}
		return nil
	}
	dropPorts := func(r Reservation) {
		portsMu.Lock()
		defer portsMu.Unlock()
		for _, p := range r.Ports {
			delete(ports, fmt.Sprintf("%s/%d/%s", r.Host, p.External, p.Protocol))
		}
	}

	var stop atomic.Bool
	checked := make(chan error, 1)
	go func() {
		var err error
		for !stop.Load() && err == nil {
			for _, slot := range s.hosts.Load().list {
				if err = checkHost(slot.state.Load(), maxPerHost); err != nil {
					break
				}
			}
		}
		checked <- err
	}()

	held := make([][]Reservation, workers)
	var wg sync.WaitGroup
	var placed, failed atomic.Int64
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			var mine []Reservation
			for op := range opsEach {
				switch k := rng.IntN(10); {
				case k < 5 && len(mine) < 4 || len(mine) == 0:
					req := Request{
						Key:         fmt.Sprintf("w%d-%d", w, op),
						Resources:   Resources{MilliCPU: int64(100 * (1 + rng.IntN(10))), MemoryBytes: int64(1+rng.IntN(8)) * 64 * mib},
						SpreadGroup: fmt.Sprint("g", rng.IntN(3)),
						MaxPerHost:  maxPerHost,
					}
					for range rng.IntN(3) {
						req.Ports = append(req.Ports, PortRequest{Internal: 80, Protocol: []string{"tcp", "udp"}[rng.IntN(2)]})
					}
					if rng.IntN(4) == 0 {
						req.Ports = append(req.Ports, PortRequest{Internal: 9, External: 20000 + rng.IntN(20)})
					}
					r, err := s.Reserve(ctx, req)
					var nf *NoFitError
					if errors.As(err, &nf) {
						failed.Add(1)
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					placed.Add(1)
					if err := claimPorts(r); err != nil {
						t.Error(err)
						return
					}
					mine = append(mine, r)
				case k < 8 || len(mine) >= 4:
					i := rng.IntN(len(mine))
					dropPorts(mine[i])
					if err := s.Release(mine[i].ID); err != nil {
						t.Error(err)
						return
					}
					mine = append(mine[:i], mine[i+1:]...)
				default:
					i := rng.IntN(len(mine))
					to := Resources{MilliCPU: int64(100 * (1 + rng.IntN(12))), MemoryBytes: int64(1+rng.IntN(10)) * 64 * mib}
					r, err := s.Resize(mine[i].ID, to)
					var nf *NoFitError
					if errors.As(err, &nf) {
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					mine[i] = r
				}
			}
			held[w] = mine
		}()
	}
	wg.Wait()
	stop.Store(true)
	if err := <-checked; err != nil {
		t.Fatal("during the run: ", err)
	}
	t.Logf("placed %d, rejected %d", placed.Load(), failed.Load())
	if placed.Load() < workers*opsEach/8 || failed.Load() == 0 {
		t.Errorf("placed %d, rejected %d: the pool was not under pressure", placed.Load(), failed.Load())
	}

	// The final snapshot: states hold exactly what the callers hold.
	want := map[string]HostUsage{}
	for _, mine := range held {
		for _, r := range mine {
			u := want[r.Host]
			u.Reserved.MilliCPU += r.Resources.MilliCPU
			u.Reserved.MemoryBytes += r.Resources.MemoryBytes
			u.Containers++
			for _, p := range r.Ports {
				u.Ports = append(u.Ports, p.External)
			}
			want[r.Host] = u
		}
	}
	for _, slot := range s.hosts.Load().list {
		st := slot.state.Load()
		if err := checkHost(st, maxPerHost); err != nil {
			t.Error("final: ", err)
		}
		w := want[slot.name]
		if st.used != w.Reserved || st.containers != w.Containers || len(st.ports) != len(w.Ports) {
			t.Errorf("%s holds %+v, %d containers, %d ports; callers hold %+v, %d, %d",
				slot.name, st.used, st.containers, len(st.ports), w.Reserved, w.Containers, len(w.Ports))
		}
	}
}
