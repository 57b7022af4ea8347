package scheduler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Get returns a live reservation by id.
func (s *Scheduler) Get(id string) (Reservation, bool) {
	rec := s.ids.load(id)
	if rec == nil {
		return Reservation{}, false
	}
	return rec.snapshot()
}

// Lookup returns the live reservation held under an idempotency key.
func (s *Scheduler) Lookup(key string) (Reservation, bool) {
	rec := s.keys.load(key)
	if rec == nil {
		return Reservation{}, false
	}
	return rec.snapshot()
}

// live locks the record of a live reservation; the caller unlocks it.
func (s *Scheduler) live(id string) (*record, error) {
	rec := s.ids.load(id)
	if rec == nil {
		return nil, fmt.Errorf("reservation %s: %w", id, ErrNotFound)
	}
	rec.mu.Lock()
	if rec.res.State == Released {
		rec.mu.Unlock()
		return nil, fmt.Errorf("reservation %s: %w", id, ErrReleased)
	}
	return rec, nil
}

// Bind records the container created for a reservation: Reserved ->
// Bound. Binding again to the same container is a no-op. The lease keeps
// running: when it ends, the verifier is asked whether the container still
// exists.
func (s *Scheduler) Bind(id, containerID string) (Reservation, error) {
	if containerID == "" {
		return Reservation{}, fmt.Errorf("reservation %s: bind needs a container id", id)
	}
	rec, err := s.live(id)
	if err != nil {
		return Reservation{}, err
	}
	defer rec.mu.Unlock()
	if rec.res.State == Bound && rec.res.ContainerID != containerID {
		return Reservation{}, fmt.Errorf("reservation %s is bound to container %s, not %s", id, rec.res.ContainerID, containerID)
	}
	if rec.res.State == Reserved {
		rec.res.State = Bound
		rec.res.ContainerID = containerID
		rec.res.LeaseExpiry = s.clock.Now().Add(s.leaseTTL)
	}
	return rec.res.clone(), nil
}

// Release returns a reservation's capacity and ports to its host. An id
// the scheduler does not hold (released already, or never seen by this
// process) is not an error: there is nothing to return.
func (s *Scheduler) Release(id string) error {
	rec := s.ids.load(id)
	if rec == nil {
		return nil
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	s.releaseLocked(rec)
	return nil
}

func (s *Scheduler) releaseLocked(rec *record) {
	if rec.res.State == Released {
		return
	}
	taken := rec.held
	taken.sign = -1
	rec.slot.update(func(st *hostState) *hostState { return st.apply(taken) })
	rec.res.State = Released
	s.ids.compareAndDelete(rec.res.ID, rec)
	if rec.res.Key != "" {
		s.keys.compareAndDelete(rec.res.Key, rec)
	}
}

// Resize changes a live reservation's CPU and memory in place, atomically
// with the host's state. Growth must fit on the reservation's host (its
// own share counts as free); shrinking always succeeds. When the host
// cannot take it, the error is a *NoFitError with Resize set.
func (s *Scheduler) Resize(id string, to Resources) (Reservation, error) {
	return s.resize(id, to, true)
}

// Resized records a resize that already happened on an engine (another
// process made it): like Resize, but it accepts an overcommit, as Restore
// does. Reality wins, and such a host simply fits nothing new.
func (s *Scheduler) Resized(id string, to Resources) (Reservation, error) {
	return s.resize(id, to, false)
}

func (s *Scheduler) resize(id string, to Resources, mustFit bool) (Reservation, error) {
	if err := validateResources(to); err != nil {
		return Reservation{}, fmt.Errorf("resize %s: %w", id, err)
	}
	rec, err := s.live(id)
	if err != nil {
		return Reservation{}, err
	}
	defer rec.mu.Unlock()
	from := rec.res.Resources
	for {
		cur := rec.slot.state.Load()
		if err := resizeFits(cur, &rec.res, to); err != nil && mustFit {
			return Reservation{}, err
		}
		next := *cur
		next.used.MilliCPU += to.MilliCPU - from.MilliCPU
		next.used.MemoryBytes += to.MemoryBytes - from.MemoryBytes
		if rec.slot.state.CompareAndSwap(cur, &next) {
			break
		}
	}
	rec.res.Resources = to
	rec.held.resources = to
	return rec.res.clone(), nil
}

// CheckResize answers whether Resize would succeed now, changing nothing.
func (s *Scheduler) CheckResize(id string, to Resources) error {
	if err := validateResources(to); err != nil {
		return fmt.Errorf("resize %s: %w", id, err)
	}
	rec, err := s.live(id)
	if err != nil {
		return err
	}
	defer rec.mu.Unlock()
	return resizeFits(rec.slot.state.Load(), &rec.res, to)
}

// resizeFits checks each dimension that grows, counting the reservation's
// own share as free.
func resizeFits(st *hostState, res *Reservation, to Resources) error {
	from := res.Resources
	free := st.free()
	free.MilliCPU += from.MilliCPU
	free.MemoryBytes += from.MemoryBytes
	var rejection *Rejection
	switch {
	case st.retired && (to.MilliCPU > from.MilliCPU || to.MemoryBytes > from.MemoryBytes):
		rejection = &Rejection{Host: res.Host, Reason: ReasonUnhealthy, Detail: "removed from the pool"}
	case to.MilliCPU > from.MilliCPU && to.MilliCPU > free.MilliCPU:
		rejection = &Rejection{Host: res.Host, Reason: ReasonCPU, Detail: formatCPU(max(free.MilliCPU, 0)) + " free"}
	case to.MemoryBytes > from.MemoryBytes && to.MemoryBytes > free.MemoryBytes:
		rejection = &Rejection{Host: res.Host, Reason: ReasonMemory, Detail: "memory " + formatBytes(max(free.MemoryBytes, 0)) + " free"}
	default:
		return nil
	}
	name := res.Name
	if name == "" {
		name = res.Key
	}
	return &NoFitError{Request: name, Needs: to, Rejections: []Rejection{*rejection}, Resize: true}
}

// Restore loads a container observed on an engine as a Bound reservation,
// even when it overcommits its host: reality wins, and such a host simply
// fits nothing new. It keeps r's id (when set), host, ports and spread
// group, and is idempotent by r.Key and by r.ID. A reservation given as
// Reserved with no container (a lease berthd kept in its store) stays
// Reserved, so that a create can bind it.
func (s *Scheduler) Restore(r Reservation) (Reservation, error) {
	if err := validateResources(r.Resources); err != nil {
		return Reservation{}, fmt.Errorf("restore %s: %w", r.Name, err)
	}
	if r.DiskBytes < 0 || r.Devices < 0 {
		return Reservation{}, fmt.Errorf("restore %s: disk and devices must not be negative", r.Name)
	}
	r.Devices = max(r.Devices, len(r.DeviceIDs))
	r.DeviceIDs = slices.Clone(r.DeviceIDs)
	held := change{resources: r.Resources, group: r.SpreadGroup, sign: 1,
		volume: r.Volume, disk: r.DiskBytes, devices: r.Devices, deviceIDs: r.DeviceIDs}
	ports := make([]PortBinding, 0, len(r.Ports))
	for _, p := range r.Ports {
		if err := validatePort(p.Internal, p.External, p.Protocol, true); err != nil {
			return Reservation{}, fmt.Errorf("restore %s: %w", r.Name, err)
		}
		if p.Protocol == "" {
			p.Protocol = "tcp"
		}
		ports = append(ports, p)
		if p.External != 0 {
			held.ports = append(held.ports, makePortKey(p.Protocol, p.External))
		}
	}
	slot := s.slotFor(r.Host)
	if slot == nil {
		return Reservation{}, fmt.Errorf("restore %s: host %q: %w", r.Name, r.Host, ErrUnknownHost)
	}
	if r.ID != "" {
		if res, ok := s.Get(r.ID); ok {
			return res, nil
		}
	}
	rec, res, err := s.claim(context.Background(), r.Key)
	if rec == nil {
		return res, err
	}
	rec.slot, rec.held = slot, held
	rec.res = r
	rec.res.Ports = ports
	if r.State != Reserved || r.ContainerID != "" {
		rec.res.State = Bound
	}
	slot.update(func(st *hostState) *hostState { return st.apply(held) })
	if !s.index(rec, r.ID) {
		// Restored concurrently under the same id (and another key).
		s.releaseLocked(rec)
		_, _ = s.settle(rec, ErrReleased) // withdraws the claim; the error is ours
		if res, ok := s.Get(r.ID); ok {
			return res, nil
		}
		return Reservation{}, fmt.Errorf("restore %s: reservation %s: %w", r.Name, r.ID, ErrReleased)
	}
	return s.settle(rec, nil)
}

// Rekey moves a live reservation to another idempotency key, as when a
// plan's lease becomes its container's reservation. It fails with
// ErrKeyTaken when another live reservation holds the key.
func (s *Scheduler) Rekey(id, key string) (Reservation, error) {
	rec, err := s.live(id)
	if err != nil {
		return Reservation{}, err
	}
	defer rec.mu.Unlock()
	if rec.res.Key == key {
		return rec.res.clone(), nil
	}
	if key == "" || !s.keys.store(key, rec) {
		return Reservation{}, fmt.Errorf("reservation %s: key %q: %w", id, key, ErrKeyTaken)
	}
	if rec.res.Key != "" {
		s.keys.compareAndDelete(rec.res.Key, rec)
	}
	rec.res.Key = key
	return rec.res.clone(), nil
}

// RenewLease extends a live reservation's lease to now+ttl (the configured
// LeaseTTL when ttl <= 0).
func (s *Scheduler) RenewLease(id string, ttl time.Duration) error {
	if ttl <= 0 {
		ttl = s.leaseTTL
	}
	rec, err := s.live(id)
	if err != nil {
		return err
	}
	rec.res.LeaseExpiry = s.clock.Now().Add(ttl)
	rec.mu.Unlock()
	return nil
}

// ExpireLeases handles reservations whose lease has run out. It never frees
// on the timer alone: for each, it asks the verifier whether the container
// exists. A Reserved reservation has no container id yet, so the verifier
// is asked with the reservation id (engines label containers with it). When
// the container exists the lease is renewed; when it does not, the
// reservation is released. A verifier error keeps the reservation and is
// returned (joined) with the ids that were freed. No lock is held while
// the verifier runs.
func (s *Scheduler) ExpireLeases(ctx context.Context) ([]string, error) {
	if s.verifier == nil {
		return nil, ErrNoVerifier
	}
	type due struct {
		rec    *record
		res    Reservation
		lookup string
	}
	now := s.clock.Now()
	var dues []due
	for _, rec := range s.ids.all() {
		res, live := rec.snapshot()
		if !live || res.LeaseExpiry.IsZero() || now.Before(res.LeaseExpiry) {
			continue
		}
		lookup := res.ContainerID
		if res.State == Reserved {
			lookup = res.ID
		}
		dues = append(dues, due{rec: rec, res: res, lookup: lookup})
	}
	var freed []string
	var errs []error
	for _, d := range dues {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		exists, err := s.verifier.ContainerExists(ctx, d.res.Host, d.lookup)
		if err != nil {
			errs = append(errs, fmt.Errorf("reservation %s on %s: %w", d.res.ID, d.res.Host, err))
			continue
		}
		d.rec.mu.Lock()
		// Bound, renewed or released while the verifier ran: the answer is
		// about a state that no longer holds.
		unchanged := d.rec.res.State == d.res.State && d.rec.res.LeaseExpiry.Equal(d.res.LeaseExpiry)
		if unchanged && exists {
			d.rec.res.LeaseExpiry = s.clock.Now().Add(s.leaseTTL)
		} else if unchanged {
			s.releaseLocked(d.rec)
			freed = append(freed, d.res.ID)
		}
		d.rec.mu.Unlock()
	}
	return freed, errors.Join(errs...)
}

// Host returns one current host, as SetHosts gave it, with its health.
func (s *Scheduler) Host(name string) (Host, bool) {
	slot := s.hosts.Load().slot(name)
	if slot == nil {
		return Host{}, false
	}
	return slot.state.Load().public(), true
}

// public copies the host out of its state, labels included, so callers
// cannot change what placement reads.
func (st *hostState) public() Host {
	h := st.host.Host
	h.Healthy = st.healthy
	h.Labels = maps.Clone(st.host.Labels)
	h.DeviceIDs = slices.Clone(st.host.DeviceIDs)
	return h
}

// Usage reports every host's capacity and what is held on it, sorted by
// host name. Free is clamped at zero on overcommitted hosts.
func (s *Scheduler) Usage() []HostUsage {
	tbl := s.hosts.Load()
	out := make([]HostUsage, 0, len(tbl.list))
	for _, slot := range tbl.list {
		st := slot.state.Load()
		free := st.free()
		u := HostUsage{
			Host:       st.public(),
			Reserved:   st.used,
			Free:       Resources{MilliCPU: max(free.MilliCPU, 0), MemoryBytes: max(free.MemoryBytes, 0)},
			Containers: st.containers,
			Volumes:    st.volumes,
			DiskBytes:  st.disk,
			Devices:    st.devices,
			DeviceIDs:  slices.Compact(slices.Clone(st.deviceIDs)),
		}
		for _, k := range st.ports {
			u.Ports = append(u.Ports, k.port())
		}
		slices.Sort(u.Ports)
		u.Ports = slices.Compact(u.Ports)
		out = append(out, u)
	}
	return out
}
