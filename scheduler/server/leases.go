package server

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/scheduler"
	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
	"github.com/berthsh/terraform-provider-berth/scheduler/store"
)

// bucketLeases holds the held (unbound) leases by id. A bound lease needs
// no record: its container carries the reservation id in its labels, and
// the ledger is rebuilt from the engines.
const bucketLeases = "leases"

// BucketLeases is where the held leases are, for a metrics collector.
const BucketLeases = bucketLeases

// leaseRecord is a held lease as stored.
type leaseRecord struct {
	api.Lease
	Key         string // the scheduler key: lease:pool/name/fingerprint
	SpreadGroup string
}

// leaseEntry is a held lease in memory. mu serializes its changes and is
// held across its store commit, never across engine I/O: a create marks it
// binding and lets go while it talks to the engine.
type leaseEntry struct {
	mu      sync.Mutex
	rec     leaseRecord
	binding bool // a create is binding it now
	gone    bool // bound or released; no longer in the maps
}

// leases are the plan-time placements of every client.
type leases struct {
	be    *backend.Embedded
	store store.Store
	clock func() time.Time
	log   *slog.Logger
	// onExpired is told the pool of each lease the sweep removes (metrics).
	onExpired func(pool string)

	mu     sync.Mutex // guards the maps; never held across I/O
	byID   map[string]*leaseEntry
	byKey  map[string]*leaseEntry
	byName map[string]*leaseEntry // pool/name -> its newest lease
	// expired remembers where each expired key's lease was: the apply of a
	// saved plan re-plans in a new process that cannot know the planned
	// host, so taking the key again must prefer that host, or Terraform
	// sees another host than the plan showed. Kept in memory for a day.
	expired map[string]expiredLease
}

// expiredLease is where an expired key's lease was, and when it expired.
type expiredLease struct {
	host string
	at   time.Time
}

// expiredRetention bounds how long an expired lease's host is preferred.
const expiredRetention = 24 * time.Hour

func newLeases(be *backend.Embedded, st store.Store, clock func() time.Time, log *slog.Logger) *leases {
	return &leases{
		be: be, store: st, clock: clock, log: log, onExpired: func(string) {},
		byID: map[string]*leaseEntry{}, byKey: map[string]*leaseEntry{}, byName: map[string]*leaseEntry{},
		expired: map[string]expiredLease{},
	}
}

// leaseKey is the lease's key in the scheduler.
func leaseKey(spec backend.ContainerSpec) (key, fingerprint string) {
	fingerprint = api.Fingerprint(spec)
	return "lease:" + spec.Pool + "/" + spec.Name + "/" + fingerprint, fingerprint
}

// take reserves (or finds) the lease of a planned create and renews it to
// now+ttl.
func (l *leases) take(ctx context.Context, holder string, req api.LeaseRequest) (api.Lease, error) {
	spec := req.Spec
	if spec.Pool == "" || spec.Name == "" {
		return api.Lease{}, apiError(api.CodeBadRequest, "Spec.Pool and Spec.Name are required")
	}
	ttl := req.TTL
	switch {
	case ttl == 0:
		ttl = api.DefaultLeaseTTL
	case ttl < time.Second || ttl > api.MaxLeaseTTL:
		return api.Lease{}, apiError(api.CodeBadRequest, fmt.Sprintf("TTL %s is out of range (1s to %s)", ttl, api.MaxLeaseTTL))
	}
	if req.Replaces != nil && (req.Replaces.Pool != spec.Pool || req.Replaces.Name != spec.Name) {
		return api.Lease{}, apiError(api.CodeBadRequest, "Replaces must name the same pool and container as Spec")
	}
	key, fingerprint := leaseKey(spec)
	// A sweep may release the reservation between Reserve and the lock:
	// then reserve again.
	for range 3 {
		res, err := l.reserve(ctx, spec, key, req.Replaces)
		if err != nil {
			return api.Lease{}, err
		}
		e, superseded := l.entryFor(res, spec.Pool, holder, fingerprint)
		lease, ok, err := l.renew(ctx, e, ttl)
		if superseded != nil && err == nil {
			// A new plan of the same container with other settings: the
			// old plan's lease stops holding capacity (its apply, if any,
			// takes it again on its host or asks for a new plan).
			if err := l.release(ctx, superseded.rec.ID); err != nil {
				l.log.Warn("superseded lease kept", "lease", superseded.rec.ID, "err", err)
			}
		}
		if ok || err != nil {
			return lease, err
		}
	}
	return api.Lease{}, apiError(api.CodeConflict, fmt.Sprintf("the lease of %s/%s kept expiring while it was renewed; try again", spec.Pool, spec.Name))
}

// reserve reserves the lease's capacity under key. A key whose lease
// expired is taken again on the host it had when that host still fits;
// otherwise it is placed anew (and an apply of the old plan then fails,
// as it should: its host cannot take it any more).
func (l *leases) reserve(ctx context.Context, spec backend.ContainerSpec, key string, replaces *backend.ContainerRef) (scheduler.Reservation, error) {
	l.mu.Lock()
	last, wasExpired := l.expired[key]
	l.mu.Unlock()
	if wasExpired && spec.Host == "" {
		pinned := spec
		pinned.Host = last.host
		res, err := l.be.ReserveLease(ctx, pinned, key, replaces)
		var noFit *scheduler.NoFitError
		switch {
		case err == nil:
			l.mu.Lock()
			delete(l.expired, key)
			l.mu.Unlock()
			return res, nil
		case !errors.As(err, &noFit) && !errors.Is(err, scheduler.ErrUnknownHost):
			return res, err
		}
	}
	return l.be.ReserveLease(ctx, spec, key, replaces)
}

// entryFor returns the entry of a reservation, adding it when new; a new
// entry supersedes the previous lease of the same container.
func (l *leases) entryFor(res scheduler.Reservation, pool, holder, fingerprint string) (e, superseded *leaseEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.byID[res.ID]; ok {
		return e, nil
	}
	ports := make([]engine.PortBinding, len(res.Ports))
	for i, p := range res.Ports {
		ports[i] = engine.PortBinding{Internal: p.Internal, External: p.External, Protocol: p.Protocol}
	}
	e = &leaseEntry{rec: leaseRecord{
		Lease: api.Lease{
			ID: res.ID, Pool: pool, Name: res.Name, Fingerprint: fingerprint, Host: res.Host,
			Resources: backend.Resources(res.Resources), Ports: ports, State: api.LeaseHeld,
			Holder: holder, Created: l.clock(),
		},
		Key: res.Key, SpreadGroup: res.SpreadGroup,
	}}
	l.byID[res.ID] = e
	l.byKey[res.Key] = e
	name := pool + "/" + res.Name
	superseded = l.byName[name]
	l.byName[name] = e
	return e, superseded
}

// renew extends a held lease and makes it durable; ok is false when the
// lease went away meanwhile.
func (l *leases) renew(ctx context.Context, e *leaseEntry, ttl time.Duration) (api.Lease, bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.gone {
		return api.Lease{}, false, nil
	}
	rec := e.rec
	rec.Expires = l.clock().Add(ttl)
	if err := l.save(ctx, rec); err != nil {
		return api.Lease{}, false, err
	}
	e.rec = rec
	return l.view(rec), true, nil
}

func (l *leases) view(rec leaseRecord) api.Lease {
	lease := rec.Lease
	lease.Age = l.clock().Sub(lease.Created).Truncate(time.Second)
	return lease
}

func (l *leases) save(ctx context.Context, rec leaseRecord) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return commit(ctx, l.store, store.Op{Bucket: bucketLeases, Key: rec.ID, Value: data})
}

// forget removes a lease that was bound or released, in the store and in
// memory; the caller holds e.mu.
func (l *leases) forget(ctx context.Context, e *leaseEntry) error {
	if err := commit(ctx, l.store, store.Op{Bucket: bucketLeases, Key: e.rec.ID}); err != nil {
		return err
	}
	e.gone = true
	l.mu.Lock()
	delete(l.byID, e.rec.ID)
	if l.byKey[e.rec.Key] == e {
		delete(l.byKey, e.rec.Key)
	}
	if name := e.rec.Pool + "/" + e.rec.Name; l.byName[name] == e {
		delete(l.byName, name)
	}
	l.mu.Unlock()
	return nil
}

func (l *leases) get(id string) (*leaseEntry, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.byID[id]
	return e, ok
}

func (l *leases) getByKey(key string) (*leaseEntry, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.byKey[key]
	return e, ok
}

// lookup returns a held lease.
func (l *leases) lookup(id string) (api.Lease, bool) {
	e, ok := l.get(id)
	if !ok {
		return api.Lease{}, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.gone {
		return api.Lease{}, false
	}
	return l.view(e.rec), true
}

// list returns the held leases that pass keep, oldest first.
func (l *leases) list(keep func(api.Lease) bool) []api.Lease {
	l.mu.Lock()
	entries := make([]*leaseEntry, 0, len(l.byID))
	for _, e := range l.byID {
		entries = append(entries, e)
	}
	l.mu.Unlock()
	out := []api.Lease{}
	for _, e := range entries {
		e.mu.Lock()
		if !e.gone && keep(e.rec.Lease) {
			out = append(out, l.view(e.rec))
		}
		e.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// release frees a held lease's capacity. A lease being bound cannot be
// released; an unknown lease is already released.
func (l *leases) release(ctx context.Context, id string) error {
	e, ok := l.get(id)
	if !ok {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.gone {
		return nil
	}
	if e.binding {
		return apiError(api.CodeConflict, fmt.Sprintf("lease %s is being bound by a create right now", id))
	}
	l.be.ReleaseLease(e.rec.Pool, id)
	return l.forget(ctx, e)
}

// create binds the create's lease: its container is created on the
// lease's host. When the lease has gone (expired and freed), it is taken
// again on the host the plan showed, or the create fails asking for a new
// plan; it never lands elsewhere. Without lease and planned host, the
// embedded backend places it.
func (l *leases) create(ctx context.Context, req api.CreateRequest) (backend.ContainerState, error) {
	spec := req.Spec
	if req.LeaseID == "" && req.PlannedHost == "" {
		return l.be.CreateContainer(ctx, spec)
	}
	if err := l.be.LoadPool(ctx, spec.Pool); err != nil {
		return backend.ContainerState{}, err
	}
	key, _ := leaseKey(spec)
	id := req.LeaseID
	if _, held := l.be.Reservation(spec.Pool, id); !held {
		// No lease named, or it is gone: a later plan of the same spec
		// may hold one.
		if e, ok := l.getByKey(key); ok {
			id = e.rec.ID
		}
	}
	if res, ok := l.be.Reservation(spec.Pool, id); ok {
		if res.Name != spec.Name {
			return backend.ContainerState{}, apiError(api.CodeBadRequest, fmt.Sprintf("lease %s is for %s, not %s", id, res.Name, spec.Name))
		}
		if req.PlannedHost != "" && res.Host != req.PlannedHost {
			return backend.ContainerState{}, apiError(api.CodeConflict, fmt.Sprintf("lease %s of %s is on %s, but the plan showed %s: run terraform plan again", id, spec.Name, res.Host, req.PlannedHost))
		}
		state, err := l.bind(ctx, spec, id)
		if !errors.Is(err, errLeaseReleased) {
			return state, err
		}
	}
	if req.LeaseID != "" {
		// Its container may exist already: this create ran before a crash,
		// which cut it short before it answered.
		if state, ok, err := l.be.AdoptLeased(ctx, spec, req.LeaseID); ok || err != nil {
			return state, err
		}
	}
	if req.PlannedHost == "" {
		return backend.ContainerState{}, apiError(api.CodeLeaseExpired, fmt.Sprintf("the lease of %s/%s has expired and the request names no planned host: run terraform plan again", spec.Pool, spec.Name))
	}
	return l.retake(ctx, spec, key, req.PlannedHost, req.LeaseID)
}

// errLeaseReleased: the lease was released (expired) just before its bind.
var errLeaseReleased = errors.New("lease released before its bind")

// bind creates the container on lease id. A lease kept in memory is marked
// binding meanwhile, so neither expiry nor release frees it under the create.
func (l *leases) bind(ctx context.Context, spec backend.ContainerSpec, id string) (backend.ContainerState, error) {
	e, tracked := l.get(id)
	if tracked {
		e.mu.Lock()
		switch {
		case e.gone:
			e.mu.Unlock()
			tracked = false
		case e.binding:
			e.mu.Unlock()
			// A rerun's create while an earlier process's still runs here:
			// it waits (in_flight is retried), then finds the container.
			return backend.ContainerState{}, apiError(api.CodeInFlight, fmt.Sprintf("lease %s of %s is being bound by another create right now; repeat the request", id, spec.Name))
		default:
			e.binding = true
			e.mu.Unlock()
		}
	}
	if _, ok := l.be.Reservation(spec.Pool, id); !ok {
		if tracked {
			l.settle(e)
		}
		return backend.ContainerState{}, errLeaseReleased
	}
	state, err := l.be.CreateOnLease(ctx, spec, id)
	if tracked {
		l.settle(e)
	}
	return state, err
}

// settle ends a bind: the lease record goes once its reservation is bound
// or gone, and stays while it is still held (the create failed early).
func (l *leases) settle(e *leaseEntry) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.binding = false
	if res, ok := l.be.Reservation(e.rec.Pool, e.rec.ID); ok && res.State == scheduler.Reserved {
		return
	}
	// The container (or nothing) now holds the capacity: the record goes.
	// A failed delete leaves it for the sweep, which asks the engine.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.forget(ctx, e); err != nil {
		l.log.Warn("lease record not removed after its bind; the sweep retries", "lease", e.rec.ID, "err", err)
	}
}

// retake reserves the create on the planned host again and creates it
// there, or fails asking for a new plan. The container carries the plan's
// lease id, so that a repeat of the create finds it.
func (l *leases) retake(ctx context.Context, spec backend.ContainerSpec, key, host, planned string) (backend.ContainerState, error) {
	pinned := spec
	pinned.Host = host
	res, err := l.be.ReserveLease(ctx, pinned, key+"@"+host, nil)
	var noFit *scheduler.NoFitError
	if errors.As(err, &noFit) || errors.Is(err, scheduler.ErrUnknownHost) {
		return backend.ContainerState{}, apiError(api.CodeLeaseExpired, fmt.Sprintf(
			"the plan's placement of %s/%s on %s has expired and %s can no longer take it (%v): run terraform plan again", spec.Pool, spec.Name, host, host, err))
	}
	if err != nil {
		return backend.ContainerState{}, err
	}
	state, err := l.be.CreateOnRetakenLease(ctx, spec, res.ID, cmp.Or(planned, res.ID))
	if err != nil {
		l.be.ReleaseLease(spec.Pool, res.ID)
	}
	return state, err
}

// sweep handles leases past their expiry: each is freed only once its
// host's engine confirms that no container carries it. A container that
// does carry it (its create's answer was lost) keeps it, as bound.
func (l *leases) sweep(ctx context.Context) {
	now := l.clock()
	l.mu.Lock()
	for key, last := range l.expired {
		if now.Sub(last.at) > expiredRetention {
			delete(l.expired, key)
		}
	}
	entries := make([]*leaseEntry, 0, len(l.byID))
	for _, e := range l.byID {
		entries = append(entries, e)
	}
	l.mu.Unlock()
	for _, e := range entries {
		e.mu.Lock()
		due := !e.gone && !e.binding && !now.Before(e.rec.Expires)
		rec := e.rec
		e.mu.Unlock()
		if !due {
			continue
		}
		holder, err := l.be.LeaseHolder(ctx, rec.Pool, rec.Host, rec.ID)
		if err != nil {
			l.log.Warn("lease expired, but its engine did not answer: kept", "lease", rec.ID, "host", rec.Host, "err", err)
			continue
		}
		e.mu.Lock()
		if !e.gone && !e.binding && e.rec.Expires.Equal(rec.Expires) {
			if holder == "" {
				l.be.ReleaseLease(rec.Pool, rec.ID)
			}
			if err := l.forget(ctx, e); err != nil {
				l.log.Warn("expired lease not removed", "lease", rec.ID, "err", err)
			} else {
				if holder == "" {
					l.mu.Lock()
					l.expired[rec.Key] = expiredLease{host: rec.Host, at: now}
					l.mu.Unlock()
				}
				l.onExpired(rec.Pool)
				l.log.Info("lease expired", "lease", rec.ID, "pool", rec.Pool, "name", rec.Name, "host", rec.Host, "holder", rec.Holder, "bound_to", holder)
			}
		}
		e.mu.Unlock()
	}
}

// restore loads the stored leases back into the ledger after a start. A
// lease whose container exists on the engines is bound: its record goes.
// A lease whose pool cannot be loaded now stays stored, for the next start.
func (l *leases) restore(ctx context.Context) error {
	items, err := l.store.List(ctx, bucketLeases, "")
	if err != nil {
		return err
	}
	for _, item := range items {
		var rec leaseRecord
		if err := json.Unmarshal(item.Value, &rec); err != nil {
			return fmt.Errorf("lease record %s: %w", item.Key, err)
		}
		ports := make([]scheduler.PortBinding, len(rec.Ports))
		for i, p := range rec.Ports {
			ports[i] = scheduler.PortBinding{Internal: p.Internal, External: p.External, Protocol: p.Protocol}
		}
		res, err := l.be.RestoreLease(ctx, rec.Pool, scheduler.Reservation{
			ID: rec.ID, Key: rec.Key, Name: rec.Name, Host: rec.Host,
			Resources: scheduler.Resources(rec.Resources), Ports: ports, SpreadGroup: rec.SpreadGroup,
		})
		if err != nil {
			l.log.Warn("lease not restored; kept for the next start", "lease", rec.ID, "pool", rec.Pool, "err", err)
			continue
		}
		e := &leaseEntry{rec: rec}
		l.mu.Lock()
		l.byID[rec.ID], l.byKey[rec.Key], l.byName[rec.Pool+"/"+rec.Name] = e, e, e
		l.mu.Unlock()
		if res.State == scheduler.Bound {
			e.mu.Lock()
			err := l.forget(ctx, e)
			e.mu.Unlock()
			if err != nil {
				return err
			}
		}
	}
	return nil
}
