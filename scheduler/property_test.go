package scheduler

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

// checkHost verifies one host state: nothing overcommitted (CPU, memory,
// declared disk, devices), no port or device id twice, no spread group
// above its max.
func checkHost(st *hostState, maxPerHost int) error {
	h := st.host
	if st.used.MilliCPU > h.Capacity.MilliCPU || st.used.MemoryBytes > h.Capacity.MemoryBytes {
		return fmt.Errorf("%s overcommitted: %+v of %+v", h.Name, st.used, h.Capacity)
	}
	if h.DiskBytes > 0 && st.disk > h.DiskBytes {
		return fmt.Errorf("%s disk overcommitted: %d of %d", h.Name, st.disk, h.DiskBytes)
	}
	if st.devices > h.Devices {
		return fmt.Errorf("%s devices overcommitted: %d of %d", h.Name, st.devices, h.Devices)
	}
	if len(h.DeviceIDs) > 0 && len(st.deviceIDs) != st.devices {
		return fmt.Errorf("%s holds %d devices but ids %v", h.Name, st.devices, st.deviceIDs)
	}
	for i, id := range st.deviceIDs {
		if i > 0 && id == st.deviceIDs[i-1] {
			return fmt.Errorf("%s hands out device %s twice", h.Name, id)
		}
		if !slices.Contains(h.DeviceIDs, id) {
			return fmt.Errorf("%s hands out device %s, which it does not have", h.Name, id)
		}
	}
	if st.used.MilliCPU < 0 || st.used.MemoryBytes < 0 || st.containers < 0 || st.volumes < 0 || st.disk < 0 || st.devices < 0 {
		return fmt.Errorf("%s below zero: %+v, %d containers, %d volumes, disk %d, %d devices", h.Name, st.used, st.containers, st.volumes, st.disk, st.devices)
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
// callers hold. Hosts declare disk and devices (some by id, some
// by count), and requests mix containers, GPU containers and volumes.
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
		h.DiskBytes = 4 * gib
		switch i % 3 {
		case 0:
			h.DeviceIDs = []string{"0", "1", "2"}
		case 1:
			h.Devices = 2
		}
		hosts = append(hosts, h)
	}
	s, _ := testScheduler(t, Spread, hosts...)
	ctx := context.Background()

	// held maps host/port and host/device to the reservation the callers
	// believe holds it. Entries are added after Reserve returns and removed
	// before Release, so two entries for one port or device mean two live
	// holders.
	var heldMu sync.Mutex
	holders := map[string]string{}
	heldBy := func(r Reservation) []string {
		var ks []string
		for _, p := range r.Ports {
			ks = append(ks, fmt.Sprintf("%s/%d/%s", r.Host, p.External, p.Protocol))
		}
		for _, id := range r.DeviceIDs {
			ks = append(ks, fmt.Sprintf("%s/gpu/%s", r.Host, id))
		}
		return ks
	}
	claimPorts := func(r Reservation) error {
		heldMu.Lock()
		defer heldMu.Unlock()
		for _, k := range heldBy(r) {
			if other, ok := holders[k]; ok {
				return fmt.Errorf("%s held by %s and %s", k, other, r.ID)
			}
			holders[k] = r.ID
		}
		return nil
	}
	dropPorts := func(r Reservation) {
		heldMu.Lock()
		defer heldMu.Unlock()
		for _, k := range heldBy(r) {
			delete(holders, k)
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
	var reasons sync.Map // rejection reasons seen
	defer func() {
		for _, r := range []Reason{ReasonDisk, ReasonDevices} {
			if _, seen := reasons.Load(r); !seen {
				t.Errorf("no request was rejected for %s: that dimension was not under pressure", r)
			}
		}
	}()
	var wg sync.WaitGroup
	var placed, failed, gpus, volumes atomic.Int64
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
					switch rng.IntN(6) {
					case 0:
						req.Devices = 1 + rng.IntN(2)
					case 1:
						req = Request{Key: req.Key, Volume: true, DiskBytes: int64(1+rng.IntN(4)) * gib, SpreadGroup: "v" + req.SpreadGroup, MaxPerHost: maxPerHost}
					}
					r, err := s.Reserve(ctx, req)
					var nf *NoFitError
					if errors.As(err, &nf) {
						failed.Add(1)
						for _, rj := range nf.Rejections {
							reasons.Store(rj.Reason, true)
						}
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					placed.Add(1)
					if r.Devices > 0 {
						gpus.Add(1)
					}
					if r.Volume {
						volumes.Add(1)
					}
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
	t.Logf("placed %d (%d with gpus, %d volumes), rejected %d", placed.Load(), gpus.Load(), volumes.Load(), failed.Load())
	if placed.Load() < workers*opsEach/8 || failed.Load() == 0 || gpus.Load() == 0 || volumes.Load() == 0 {
		t.Errorf("placed %d (%d with gpus, %d volumes), rejected %d: the pool was not under pressure on every dimension",
			placed.Load(), gpus.Load(), volumes.Load(), failed.Load())
	}

	// The final snapshot: states hold exactly what the callers hold.
	want := map[string]HostUsage{}
	for _, mine := range held {
		for _, r := range mine {
			u := want[r.Host]
			u.Reserved.MilliCPU += r.Resources.MilliCPU
			u.Reserved.MemoryBytes += r.Resources.MemoryBytes
			if r.Volume {
				u.Volumes++
			} else {
				u.Containers++
			}
			u.DiskBytes += r.DiskBytes
			u.Devices += r.Devices
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
		if st.used != w.Reserved || st.containers != w.Containers || len(st.ports) != len(w.Ports) ||
			st.volumes != w.Volumes || st.disk != w.DiskBytes || st.devices != w.Devices {
			t.Errorf("%s holds %+v, %d containers, %d ports, %d volumes, disk %d, %d devices; callers hold %+v, %d, %d, %d, %d, %d",
				slot.name, st.used, st.containers, len(st.ports), st.volumes, st.disk, st.devices,
				w.Reserved, w.Containers, len(w.Ports), w.Volumes, w.DiskBytes, w.Devices)
		}
	}
}
