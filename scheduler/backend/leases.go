package backend

import (
	"context"
	"errors"
	"fmt"

	"github.com/berthsh/terraform-provider-berth/scheduler"
)

// This file is what berthd adds to the embedded backend: plan-time leases.
// A lease is a reservation held under its own key (berthd's pool, name and
// spec fingerprint) until the apply's create binds it; binding moves it to
// the container's key, so the container's later operations find it.

// Kinds of errors callers can test for with errors.Is.
var (
	ErrPoolNotFound = errors.New("pool not found")
	ErrPoolInUse    = errors.New("pool still has containers")
	// ErrVolumeNotFound: a container mounts a volume its pool does not have.
	ErrVolumeNotFound = errors.New("volume not found")
)

// kindError is an error whose message says what happened and how to fix
// it, and which is (errors.Is) one of the kinds above.
type kindError struct {
	kind error
	msg  string
}

func withKind(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }

// ErrLeaseGone is returned (wrapped) by CreateOnLease when the reservation
// is no longer held.
var ErrLeaseGone = errors.New("lease no longer held")

// CheckPool is PlanPool for berthd: it checks that the members answer but
// remembers nothing, since berthd's core is shared and a plan that is
// never applied must not change what its other clients see.
func (b *Embedded) CheckPool(ctx context.Context, spec PoolSpec) (PoolStatus, error) {
	discovered, err := b.discover(ctx, spec)
	if err != nil {
		return PoolStatus{}, err
	}
	return PoolStatus{Spec: spec, Discovered: discovered, Scheduler: b.servedAs}, nil
}

// LoadPool loads a pool's ledger from its engines, if not loaded yet.
func (b *Embedded) LoadPool(ctx context.Context, name string) error {
	_, err := b.pool(ctx, name)
	return err
}

// ReserveLease reserves spec's capacity under key. The same key returns
// the same reservation while it is held. A container of the same name
// fails it, unless it is the one the create replaces (replaces, or a
// replace mark left by the plan that took the lease: the apply's re-plan
// names no replaced container). Replacing leaves that mark.
func (b *Embedded) ReserveLease(ctx context.Context, spec ContainerSpec, key string, replaces *ContainerRef) (scheduler.Reservation, error) {
	ps, err := b.pool(ctx, spec.Pool)
	if err != nil {
		return scheduler.Reservation{}, err
	}
	if holder, ok := ps.sched.Lookup(containerKey(spec.Pool, spec.Name)); ok && holder.State == scheduler.Bound &&
		(replaces == nil || replaces.ContainerID != holder.ContainerID) {
		marked, err := b.replaceMarked(ctx, spec.Pool, holder)
		if err != nil {
			return scheduler.Reservation{}, err
		}
		if !marked {
			return scheduler.Reservation{}, nameInUse(spec, holder)
		}
	}
	req, err := ps.request(spec)
	if err != nil {
		return scheduler.Reservation{}, err
	}
	req.Key = key
	res, err := ps.sched.Reserve(ctx, req)
	if err == nil && replaces != nil {
		// Best effort: without the mark, only a create_before_destroy
		// replacement fails, on the name, and says so.
		_ = b.markReplaced(ctx, *replaces)
	}
	return res, err
}

// RestoreLease puts a held lease back into its pool's ledger (after a
// restart), keeping its id, host and ports. When a container on the engines
// carries the lease's id, the rebuilt ledger has it bound, and that bound
// reservation is returned.
func (b *Embedded) RestoreLease(ctx context.Context, pool string, res scheduler.Reservation) (scheduler.Reservation, error) {
	ps, err := b.pool(ctx, pool)
	if err != nil {
		return scheduler.Reservation{}, err
	}
	// Its create made the container and picked another host port (so
	// another reservation) before the crash: the container holds it.
	if holder, made, err := b.madeOnLease(ctx, ps, pool, res.Name, res.ID); made || err != nil {
		return holder, err
	}
	res.State, res.ContainerID = scheduler.Reserved, ""
	return ps.sched.Restore(res)
}

// AdoptLeased returns the container of spec's name when its create bound
// lease id (a create cut short before it answered, whose lease is no
// longer in the ledger); ok is false when there is none.
func (b *Embedded) AdoptLeased(ctx context.Context, spec ContainerSpec, id string) (state ContainerState, ok bool, err error) {
	ps, err := b.pool(ctx, spec.Pool)
	if err != nil {
		return ContainerState{}, false, err
	}
	holder, made, err := b.madeOnLease(ctx, ps, spec.Pool, spec.Name, id)
	if !made || err != nil {
		return ContainerState{}, false, err
	}
	state, err = b.adopt(ctx, spec, holder)
	return state, true, err
}

// madeOnLease returns the bound reservation of the pool's container name
// when that container's create bound lease id: under the lease's own id,
// or under another after it picked another host port (its label says).
func (b *Embedded) madeOnLease(ctx context.Context, ps *poolState, pool, name, id string) (scheduler.Reservation, bool, error) {
	holder, ok := ps.sched.Lookup(containerKey(pool, name))
	switch {
	case !ok || holder.State != scheduler.Bound:
		return scheduler.Reservation{}, false, nil
	case holder.ID == id:
		return holder, true, nil
	}
	eng, err := b.engines.Get(holder.Host)
	if err != nil {
		return scheduler.Reservation{}, false, err
	}
	c, err := eng.InspectContainer(ctx, holder.ContainerID)
	if err != nil || c == nil || c.Lease != id {
		return scheduler.Reservation{}, false, err
	}
	return holder, true, nil
}

// Reservation returns a live reservation of a loaded pool.
func (b *Embedded) Reservation(pool, id string) (scheduler.Reservation, bool) {
	ps, ok := b.pools.loaded(pool)
	if !ok {
		return scheduler.Reservation{}, false
	}
	return ps.sched.Get(id)
}

// ReleaseLease frees a lease's capacity unless a container holds it.
// Callers serialize it with CreateOnLease for the same lease.
func (b *Embedded) ReleaseLease(pool, id string) {
	if res, ok := b.Reservation(pool, id); ok && res.State == scheduler.Reserved {
		ps, _ := b.pools.loaded(pool)
		_ = ps.sched.Release(id)
	}
}

// LeaseHolder asks the host's engine which container carries the
// reservation id in its labels; "" when none does. Lease expiry frees
// capacity only on this answer, never on a timer alone.
func (b *Embedded) LeaseHolder(ctx context.Context, pool, host, id string) (string, error) {
	_, listed, err := b.list(ctx, host, pool)
	if err != nil {
		return "", err
	}
	for _, c := range listed {
		if c.ReservationID == id || c.Lease == id {
			return c.ID, nil
		}
	}
	return "", nil
}

// CreateOnLease creates spec's container on the host of lease id, and
// nowhere else: a failure is returned, not placed elsewhere, and releases
// the lease. A lease already bound (the create ran before, and its answer
// was lost) gives back its container, started.
func (b *Embedded) CreateOnLease(ctx context.Context, spec ContainerSpec, id string) (ContainerState, error) {
	return b.createOnLease(ctx, spec, id, id)
}

// CreateOnRetakenLease is CreateOnLease on reservation id, taken again for
// the plan's lease planned after that expired: the container carries
// planned, so that a repeat of the create naming it finds the container.
func (b *Embedded) CreateOnRetakenLease(ctx context.Context, spec ContainerSpec, id, planned string) (ContainerState, error) {
	return b.createOnLease(ctx, spec, id, planned)
}

func (b *Embedded) createOnLease(ctx context.Context, spec ContainerSpec, id, lease string) (ContainerState, error) {
	ps, err := b.pool(ctx, spec.Pool)
	if err != nil {
		return ContainerState{}, err
	}
	res, ok := ps.sched.Get(id)
	if !ok {
		return ContainerState{}, fmt.Errorf("lease %s of %s/%s: %w", id, spec.Pool, spec.Name, ErrLeaseGone)
	}
	if res.State == scheduler.Bound {
		return b.adopt(ctx, spec, res)
	}
	spec.lease = lease
	res, err = ps.sched.Rekey(id, containerKey(spec.Pool, spec.Name))
	if errors.Is(err, scheduler.ErrKeyTaken) {
		if mine, made, err := b.madeOnLease(ctx, ps, spec.Pool, spec.Name, lease); made || err != nil {
			if err != nil {
				return ContainerState{}, err
			}
			// An earlier run of this create made the container on another
			// port before it was cut short: the lease's capacity goes back.
			_ = ps.sched.Release(id)
			return b.adopt(ctx, spec, mine)
		}
		holder, ok := ps.sched.Lookup(containerKey(spec.Pool, spec.Name))
		switch {
		case ok && holder.State == scheduler.Bound:
			// The container this create replaces, when marked so.
			if err := b.retireOrRefuse(ctx, ps, spec, holder); err != nil {
				return ContainerState{}, err
			}
			res, err = ps.sched.Rekey(id, containerKey(spec.Pool, spec.Name))
		case ok:
			return ContainerState{}, nameInUse(spec, holder)
		}
	}
	if err != nil {
		return ContainerState{}, err
	}
	for attempt := 1; ; attempt++ {
		state, retry, err := b.tryCreate(ctx, ps, spec, res)
		if err == nil {
			return state, nil
		}
		var held *portHeldError
		if !retry || !portTaken(err) || errors.As(err, &held) || attempt == portRepicks {
			return state, fmt.Errorf("creating %s on %s, the host its plan showed: %w", spec.Name, res.Host, err)
		}
		// A host port Berth picked is bound on the host by something else
		// (often a client socket's ephemeral port): pick another there.
		req, err := ps.request(spec)
		if err != nil {
			return ContainerState{}, err
		}
		req.Host, req.PinnedBy = res.Host, "its plan"
		if res, err = b.reserve(ctx, ps, req, spec.Pool); err != nil {
			return ContainerState{}, fmt.Errorf("creating %s on %s, the host its plan showed, after its host port was taken: %w", spec.Name, req.Host, err)
		}
	}
}

// portRepicks bounds how often a create on a lease picks another host port
// after the one picked was found bound on the host.
const portRepicks = 5

// adopt returns the container bound to res, starting it if it is not
// running yet (its create was cut short).
func (b *Embedded) adopt(ctx context.Context, spec ContainerSpec, res scheduler.Reservation) (ContainerState, error) {
	eng, err := b.engines.Get(res.Host)
	if err != nil {
		return ContainerState{}, err
	}
	defer b.reads.changed(res.Host)
	observed, err := eng.InspectContainer(ctx, res.ContainerID)
	if err != nil {
		return ContainerState{}, err
	}
	if observed == nil {
		return ContainerState{}, fmt.Errorf("lease %s of %s/%s: its container %s is gone from %s: %w", res.ID, spec.Pool, spec.Name, shortID(res.ContainerID), res.Host, ErrLeaseGone)
	}
	if !observed.Running {
		if observed, err = runAndObserve(ctx, eng, res.ContainerID, spec.Name, spec.Healthcheck != nil); err != nil {
			return ContainerState{}, err
		}
	}
	state := stateOf(eng, *observed)
	state.ReservationID = res.ID
	return state, nil
}
