package backend

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/scheduler"
)

// maxPlacementAttempts bounds how often one create yields to a container of
// another process (or a failing engine) and places again. A loser learns
// the other process's containers one host at a time, so a busy race can
// take several yields per host.
const maxPlacementAttempts = 16

// vanishWaits bounds how often a create that finds no room waits for
// containers of other processes that are themselves yielding.
const vanishWaits = 4

// cleanupTimeout bounds removing a half-made container after the create's
// own context has ended.
const cleanupTimeout = 30 * time.Second

// PlanContainer reserves tentatively under the container's key. Every create
// planned by this process is counted once; when the apply process re-plans,
// the same key returns the same reservation, which its create then uses.
func (b *Embedded) PlanContainer(ctx context.Context, spec ContainerSpec) (PlanResult, error) {
	ps, err := b.pool(ctx, spec.Pool)
	if err != nil {
		return PlanResult{}, err
	}
	req, err := ps.request(spec)
	if err != nil {
		return PlanResult{}, err
	}
	res, err := ps.sched.Reserve(ctx, req)
	var noFit *scheduler.NoFitError
	if errors.As(err, &noFit) && b.awaitDeletes(ctx, spec.Pool) {
		// Terraform applies a destroy and a create of one plan side by side.
		res, err = ps.sched.Reserve(ctx, req)
	}
	if err == nil && res.State == scheduler.Bound {
		if err := b.forgetInterrupted(ctx, ps, spec, res); err != nil {
			return PlanResult{}, err
		}
		res, err = ps.sched.Reserve(ctx, req)
	}
	if err != nil {
		return PlanResult{}, err
	}
	if res.State == scheduler.Bound {
		return PlanResult{}, nameInUse(spec, res)
	}
	if err := ps.names.plan(res.ID, spec); err != nil {
		return PlanResult{}, err
	}
	result := PlanResult{Warnings: b.skippedOn(ps)}
	if spec.Host != "" {
		result.Host = res.Host
	}
	return result, nil
}

// skippedOn describes the containers with malformed labels that the pool's
// engines skipped.
func (b *Embedded) skippedOn(ps *poolState) []string {
	var warnings []string
	for _, h := range ps.sched.Usage() {
		if eng, err := b.engines.Get(h.Host.Name); err == nil {
			warnings = append(warnings, eng.Skipped()...)
		}
	}
	return warnings
}

// PlanReplacement gives back the old container's reservation in this
// process's ledger, then plans the new one like any create, and marks the
// old container as being replaced (replacements.go), in case the new one
// is created first.
func (b *Embedded) PlanReplacement(ctx context.Context, old ContainerRef, spec ContainerSpec) (PlanResult, error) {
	ps, err := b.pool(ctx, old.Pool)
	if err != nil {
		return PlanResult{}, err
	}
	releaseIn(ps.sched, old)
	result, err := b.PlanContainer(ctx, spec)
	if err == nil && old.Pool == spec.Pool && old.Name == spec.Name && hostOf(ps, old.Host).Healthy {
		result.Warnings = append(result.Warnings, b.markReplaced(ctx, old)...)
	}
	return result, err
}

// PlanDestroy gives a container planned for destruction back in this
// process's ledger, so creates planned in the same plan may use its room.
// It asks no engine: a pool not loaded yet gives the room back when it
// loads (a destroy plan then costs nothing, even with engines down).
func (b *Embedded) PlanDestroy(old ContainerRef) {
	if ps, ok := b.pools.loaded(old.Pool); ok {
		releaseIn(ps.sched, old)
		return
	}
	b.mu.Lock()
	b.destroyed[old.Pool] = append(b.destroyed[old.Pool], old)
	b.mu.Unlock()
}

// releaseIn gives an existing container's reservation back, when the
// ledger holds it for that very container (under its name, or retired).
func releaseIn(sched *scheduler.Scheduler, old ContainerRef) {
	for _, key := range []string{containerKey(old.Pool, old.Name), retiredKey(old.Pool, old.Name, old.ContainerID)} {
		if res, ok := sched.Lookup(key); ok && res.ContainerID == old.ContainerID {
			_ = sched.Release(res.ID)
		}
	}
}

// PlanResize checks whether the container's host can take the new size.
func (b *Embedded) PlanResize(ctx context.Context, current ContainerState, to Resources) (bool, string, error) {
	ps, res, err := b.reservationOf(ctx, current.Ref)
	if err != nil {
		return false, "", err
	}
	if err := ps.sched.CheckResize(res.ID, scheduler.Resources(to)); err != nil {
		return false, err.Error(), nil //nolint:nilerr // a resize that does not fit is an answer, not a failure
	}
	return true, "", nil
}

// CreateContainer places, creates, verifies, starts and waits. Anything it
// made is removed again when a later step fails; a container that cannot
// be removed (its engine stopped answering) comes back with the error, so
// that it is tracked rather than leaked.
func (b *Embedded) CreateContainer(ctx context.Context, spec ContainerSpec) (ContainerState, error) {
	ps, err := b.pool(ctx, spec.Pool)
	if err != nil {
		return ContainerState{}, err
	}
	if err := b.removeForgotten(ctx, ps, spec); err != nil {
		return ContainerState{}, err
	}
	var hostErrs []string
	req, err := ps.request(spec)
	if err != nil {
		return ContainerState{}, err
	}
	for range maxPlacementAttempts {
		res, err := b.reserve(ctx, ps, req, spec.Pool)
		if err != nil {
			return ContainerState{}, withHostErrors(err, hostErrs)
		}
		if res.State == scheduler.Bound {
			if err := b.removeInterrupted(ctx, ps, spec, res); err != nil {
				return ContainerState{}, err
			}
			continue
		}
		state, retry, err := b.tryCreate(ctx, ps, spec, res)
		var lost *hostLostError
		var held *portHeldError
		switch {
		case retry && errors.As(err, &lost):
			hostErrs = append(hostErrs, lost.Error())
		case retry && errors.As(err, &held):
			hostErrs = append(hostErrs, held.Error())
			// Placement only: the container's constraints label stays as configured.
			req.Constraints = append(slices.Clip(req.Constraints), scheduler.NodeNameLabel+" != "+held.host)
		case retry:
			// What racing processes cost: counted by the stress tests, and
			// seen with TF_LOG_PROVIDER=INFO.
			tflog.Info(ctx, yieldLogMessage, map[string]any{"pool": spec.Pool, "container": spec.Name, "host": res.Host, "reason": err.Error()})
		}
		if retry {
			continue
		}
		return state, err
	}
	return ContainerState{}, withHostErrors(fmt.Errorf("placing %s in pool %s: gave up after %d attempts lost to concurrent creates", spec.Name, spec.Pool, maxPlacementAttempts), hostErrs)
}

// yieldLogMessage is logged each time a create yields to a container of
// another process and places again.
const yieldLogMessage = "berth: create yielded"

// errYielded is a create that yielded on its host to a container another
// process created first; the container was removed.
var errYielded = errors.New("yielded to a container created before it")

// tryCreate creates, verifies and starts spec's container on the host res
// reserved. When it fails, res is released (unless a leftover container
// now holds it); retry reports that the create may place again, elsewhere:
// the host was lost (a *hostLostError), or the container yielded.
func (b *Embedded) tryCreate(ctx context.Context, ps *poolState, spec ContainerSpec, res scheduler.Reservation) (state ContainerState, retry bool, err error) {
	if err := ps.names.create(res.ID, spec); err != nil {
		return ContainerState{}, false, err
	}
	id, err := b.createOn(ctx, ps, spec, res)
	var lost *hostLostError
	var left *leftoverError
	switch {
	case errors.As(err, &left):
		return keepLeftover(ps, spec, res, left), false, err
	case errors.As(err, &lost):
		ps.sched.SetUnhealthy(res.Host, lost.Error())
		_ = ps.sched.Release(res.ID)
		return ContainerState{}, true, err
	case err != nil:
		_ = ps.sched.Release(res.ID)
		return ContainerState{}, false, err
	case id == "":
		_ = ps.sched.Release(res.ID)
		return ContainerState{}, true, fmt.Errorf("%s on %s: %w", spec.Name, res.Host, errYielded)
	}
	state, err = b.start(ctx, ps, spec, res, id)
	if err != nil {
		if err := b.discard(res.Host, id, err); errors.As(err, &left) {
			return keepLeftover(ps, spec, res, left), false, err
		}
		_ = ps.sched.Release(res.ID)
		// Lost a race the first verification could not see (yield.go).
		if portTaken(err) {
			published := b.learnForeign(ctx, ps, res.Host, spec.Pool)
			if port, outside := heldOutside(err, spec, published); outside {
				// Another host may have the port free, unless pinned here.
				return ContainerState{}, spec.Host == "", &portHeldError{host: res.Host, pool: spec.Pool, port: port, err: err}
			}
			return ContainerState{}, true, err
		}
		return ContainerState{}, errors.Is(err, errYieldedLate), err
	}
	return state, false, nil
}

// reserve places the request. When nothing fits but containers of other
// processes were counted, some of those may be yielding right now: wait
// briefly for them to vanish and try again.
func (b *Embedded) reserve(ctx context.Context, ps *poolState, req scheduler.Request, pool string) (scheduler.Reservation, error) {
	res, err := ps.sched.Reserve(ctx, req)
	var noFit *scheduler.NoFitError
	for wait := 50 * time.Millisecond; errors.As(err, &noFit) && ps.hasForeign(); wait *= 2 {
		if wait > 50*time.Millisecond<<vanishWaits {
			break
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return scheduler.Reservation{}, ctx.Err()
		}
		if b.forgetVanished(ctx, ps, pool) {
			res, err = ps.sched.Reserve(ctx, req)
		}
	}
	return res, err
}

// createOn creates the container (not started) on the reserved host and
// verifies the host against the engine. It returns "" with no error when
// the container yielded and was removed.
func (b *Embedded) createOn(ctx context.Context, ps *poolState, spec ContainerSpec, res scheduler.Reservation) (string, error) {
	eng, err := b.engines.Get(res.Host)
	if err != nil {
		return "", err
	}
	if err := b.ensureImage(ctx, eng, spec); err != nil {
		return "", hostOrRequest(eng, spec, err)
	}
	defer b.reads.changed(res.Host)
	ps.views.watch(eng, spec.Pool)
	id, err := eng.CreateContainer(ctx, engineSpec(spec, res))
	if errors.Is(err, engine.ErrNameInUse) {
		if id, err = b.takeOverNamed(ctx, ps, eng, spec, res); id == "" || err != nil {
			return "", err
		}
	}
	if err != nil && (engine.IsUnreachable(err) || ctx.Err() != nil) {
		// The engine may have made the container all the same.
		return "", b.afterFailedCreate(eng, spec, res, hostOrRequest(eng, spec, err), ctx.Err() != nil)
	}
	if err != nil {
		return "", hostOrRequest(eng, spec, err)
	}
	fits, err := b.verify(ctx, ps, eng, id, spec, false)
	if err != nil {
		return "", b.discard(res.Host, id, hostOrRequest(eng, spec, err))
	}
	if !fits {
		var left *leftoverError
		if err := b.discard(res.Host, id, fmt.Errorf("%s yielded on %s to a container created before it", spec.Name, res.Host)); errors.As(err, &left) {
			return "", err
		}
		return "", nil
	}
	return id, nil
}

// start binds the reservation, starts the container, waits for it and
// verifies the host again (yield.go). The final verification needs the
// host as it is just after the start, which the engine has logged by the
// time the start returns: it runs while the container settles, and a
// container that must yield stops the wait.
func (b *Embedded) start(ctx context.Context, ps *poolState, spec ContainerSpec, res scheduler.Reservation, id string) (ContainerState, error) {
	eng, err := b.engines.Get(res.Host)
	if err != nil {
		return ContainerState{}, err
	}
	if res, err = ps.sched.Bind(res.ID, id); err != nil {
		return ContainerState{}, err
	}
	if err := startOn(ctx, eng, id, spec.Name); err != nil {
		if engine.IsNotFound(err) {
			return ContainerState{}, vanished(spec, res.Host, "before it could start")
		}
		return ContainerState{}, err
	}
	waitCtx, stopWaiting := context.WithCancel(ctx)
	defer stopWaiting()
	type verdict struct {
		fits bool
		err  error
	}
	verified := make(chan verdict, 1)
	go func() {
		fits, err := b.verify(ctx, ps, eng, id, spec, true)
		if err != nil || !fits {
			stopWaiting()
		}
		verified <- verdict{fits, err}
	}()
	observed, waitErr := waitRunning(waitCtx, eng, id, spec.Name, spec.Healthcheck != nil)
	switch v := <-verified; {
	case v.err != nil:
		return ContainerState{}, fmt.Errorf("verifying %s on %s: %w", spec.Name, res.Host, v.err)
	case !v.fits:
		return ContainerState{}, errYieldedLate
	case waitErr != nil:
		return ContainerState{}, waitErr
	}
	state := stateOf(eng, *observed)
	state.ReservationID = res.ID
	return state, nil
}

// vanished explains a container removed between its create and its start.
// Another process takes a never-started container for the leftover of an
// interrupted create and removes it (interrupted.go), so the likeliest
// cause is another apply creating the same pool and name at this moment.
func vanished(spec ContainerSpec, host, when string) error {
	return fmt.Errorf("the container of %s.%s was removed from %s %s: another apply is probably creating %s.%s at the same moment (names are unique in a pool, and a container that has not started yet is taken for the leftover of an interrupted create), or it was removed by hand; declare each container in one workspace, then apply again",
		spec.Pool, spec.Name, host, when, spec.Pool, spec.Name)
}

// runAndObserve starts a container and waits until it runs (and is
// healthy, when asked).
func runAndObserve(ctx context.Context, eng *engine.Engine, id, name string, healthy bool) (*engine.Container, error) {
	if err := startOn(ctx, eng, id, name); err != nil {
		return nil, err
	}
	return waitRunning(ctx, eng, id, name, healthy)
}

// startOn starts a created container.
func startOn(ctx context.Context, eng *engine.Engine, id, name string) error {
	if err := eng.StartContainer(ctx, id); err != nil {
		return fmt.Errorf("starting %s on %s: %w", name, eng.Name(), err)
	}
	return nil
}

// waitRunning waits until a started container runs (and is healthy, when
// asked) and returns it as last inspected.
func waitRunning(ctx context.Context, eng *engine.Engine, id, name string, healthy bool) (*engine.Container, error) {
	observed, err := eng.WaitRunning(ctx, id, healthy)
	if err != nil {
		return nil, fmt.Errorf("waiting for %s on %s: %w", name, eng.Name(), err)
	}
	return observed, nil
}

// discard removes a container this process made, even after ctx ended,
// because of why. It returns why, or a *leftoverError when the container
// could not be removed.
func (b *Embedded) discard(host, id string, why error) error {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	defer b.reads.changed(host)
	eng, err := b.engines.Get(host)
	if err == nil {
		err = eng.Remove(ctx, id)
	}
	if err != nil {
		return &leftoverError{host: host, id: id, why: why, removal: err}
	}
	return why
}

// leftoverError is a create that failed after its container was made, and
// whose container could not be removed. Left untracked it would hold the
// name (and capacity) once its engine answers again; the provider keeps it
// in state, tainted, so that the next apply replaces it.
type leftoverError struct {
	host, id     string
	why, removal error
}

func (e *leftoverError) Error() string {
	return fmt.Sprintf("%v; its container %s could not be removed from %s (%v): it is kept in state, and the next apply replaces it",
		e.why, shortID(e.id), e.host, e.removal)
}

func (e *leftoverError) Unwrap() error { return e.why }

// keepLeftover binds the reservation to the leftover container, since it
// exists, and describes the container for the provider's state.
func keepLeftover(ps *poolState, spec ContainerSpec, res scheduler.Reservation, left *leftoverError) ContainerState {
	_, _ = ps.sched.Bind(res.ID, left.id) // already bound when the start failed
	made := engineSpec(spec, res)
	resources := Resources(res.Resources)
	return ContainerState{
		Ref:           ContainerRef{Pool: spec.Pool, Name: spec.Name, Host: res.Host, ContainerID: left.id, Resources: resources},
		ReservationID: res.ID,
		Image:         spec.Image,
		RepoDigest:    spec.RepoDigest,
		Resources:     resources,
		Ports:         made.Ports,
		SpreadGroup:   spec.SpreadGroup,
		MaxPerHost:    spec.MaxPerHost,
		Constraints:   spec.Constraints,
		Restart:       spec.Restart,
		Limits:        spec.Limits,
	}
}

// ReadContainer observes a container from the engine's batched snapshot.
func (b *Embedded) ReadContainer(ctx context.Context, ref ContainerRef) (*ContainerState, error) {
	containers, err := b.reads.get(ctx, ref.Host)
	if err != nil && b.lostHost(ctx, ref.Pool, ref.Host) {
		return nil, nil // written off with its host: gone
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s/%s on %s: %w", ref.Pool, ref.Name, ref.Host, err)
	}
	c, ok := containers[ref.ContainerID]
	if !ok {
		return nil, nil
	}
	eng, err := b.engines.Get(ref.Host)
	if err != nil {
		return nil, err
	}
	if c.MilliCPU != ref.Resources.MilliCPU || c.MemoryBytes != ref.Resources.MemoryBytes {
		// Resized in place since creation: the labels are stale, the limits are not.
		inspected, err := eng.InspectContainer(ctx, c.ID)
		if err != nil || inspected == nil {
			return nil, err
		}
		c.MilliCPU, c.MemoryBytes = inspected.MilliCPU, inspected.MemoryBytes
	}
	state := stateOf(eng, c)
	state.Warnings = eng.Skipped()
	return &state, nil
}

// ReconfigureContainer changes the limits and the restart policy; the
// reservation, and so the scheduler's books, stay as they are.
func (b *Embedded) ReconfigureContainer(ctx context.Context, current ContainerState, limits Resources, restart string) (ContainerState, error) {
	eng, err := b.engines.Get(current.Ref.Host)
	if err != nil {
		return ContainerState{}, err
	}
	defer b.reads.changed(current.Ref.Host)
	err = eng.Update(ctx, current.Ref.ContainerID, engine.Update{
		MilliCPU: current.Resources.MilliCPU, MemoryBytes: current.Resources.MemoryBytes,
		Limits: engine.Limits(limits), Restart: restart,
	})
	if err != nil {
		return ContainerState{}, fmt.Errorf("updating %s on %s: %w", current.Ref.Name, current.Ref.Host, err)
	}
	current.Limits, current.Restart = limits, restart
	return current, nil
}

// StartContainer starts a container that was stopped out of band.
func (b *Embedded) StartContainer(ctx context.Context, current ContainerState, waitHealthy bool) (ContainerState, error) {
	eng, err := b.engines.Get(current.Ref.Host)
	if err != nil {
		return ContainerState{}, err
	}
	defer b.reads.changed(current.Ref.Host)
	// A restarted container may get another address on its network.
	observed, err := runAndObserve(ctx, eng, current.Ref.ContainerID, current.Ref.Name, waitHealthy)
	if err != nil {
		return ContainerState{}, err
	}
	current.Running, current.Health, current.IPAddress = observed.Running, observed.Health, observed.IPAddress
	current.NetworkAddresses = observed.NetworkAddresses
	return current, nil
}

// StopContainer stops the container and leaves it, and its reservation, in place.
func (b *Embedded) StopContainer(ctx context.Context, current ContainerState, stopTimeout time.Duration) (ContainerState, error) {
	eng, err := b.engines.Get(current.Ref.Host)
	if err != nil {
		return ContainerState{}, err
	}
	defer b.reads.changed(current.Ref.Host)
	if err := eng.Stop(ctx, current.Ref.ContainerID, stopTimeout); err != nil {
		return ContainerState{}, fmt.Errorf("stopping %s on %s: %w", current.Ref.Name, current.Ref.Host, err)
	}
	current.Running, current.Health, current.IPAddress = false, "", ""
	current.NetworkAddresses = nil
	return current, nil
}

// DeleteContainer stops and removes the container and releases its capacity.
// It works from state alone: no pool lookup is needed.
func (b *Embedded) DeleteContainer(ctx context.Context, ref ContainerRef, stopTimeout time.Duration) error {
	eng, err := b.engines.Get(ref.Host)
	if err != nil {
		return err
	}
	defer b.reads.changed(ref.Host)
	b.mu.Lock()
	inFlight, ok := b.deleting[ref.Pool]
	if !ok {
		inFlight = &sync.WaitGroup{}
		b.deleting[ref.Pool] = inFlight
	}
	inFlight.Add(1)
	b.mu.Unlock()
	defer inFlight.Done()
	if err := eng.StopAndRemove(ctx, ref.ContainerID, stopTimeout); err != nil && !b.lostHost(ctx, ref.Pool, ref.Host) {
		return fmt.Errorf("removing %s/%s from %s: %w", ref.Pool, ref.Name, ref.Host, err)
	} else if err == nil {
		if err := eng.ForgetMarks(ctx, ref.ContainerID); err != nil {
			return fmt.Errorf("removed %s/%s from %s, but not its resize markers and replace marks: %w", ref.Pool, ref.Name, ref.Host, err)
		}
	}
	// Only this container's reservation (the key may already belong to its
	// replacement): now, or when the pool loads.
	b.PlanDestroy(ref)
	return nil
}

// awaitDeletes waits for this process's deletes in the pool to finish and
// reports whether the pool had any (room may have come back).
func (b *Embedded) awaitDeletes(ctx context.Context, pool string) bool {
	b.mu.Lock()
	inFlight, ok := b.deleting[pool]
	b.mu.Unlock()
	if !ok {
		return false
	}
	done := make(chan struct{})
	go func() { inFlight.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// FindContainer looks a container up by pool and name, for import.
func (b *Embedded) FindContainer(ctx context.Context, pool, name string) (*ContainerState, error) {
	status, err := b.ReadPool(ctx, pool)
	if err != nil {
		return nil, err
	}
	if status == nil {
		return nil, withKind(ErrPoolNotFound, "pool %q not found on any engine of the provider block", pool)
	}
	for _, host := range keys(status.Spec.Hosts) {
		eng, listed, err := b.list(ctx, host, pool)
		if err != nil {
			return nil, err
		}
		for _, c := range listed {
			if c.Name != name || c.Retired {
				continue
			}
			inspected, err := eng.InspectContainer(ctx, c.ID)
			if err != nil || inspected == nil {
				return nil, err
			}
			state := stateOf(eng, *inspected)
			state.Command, state.Env, state.Healthcheck = inspected.Command, inspected.Env, inspected.Healthcheck
			state.StopTimeout, state.Options = inspected.StopTimeout, inspected.Options
			return &state, nil
		}
	}
	return nil, nil
}

// reservationOf finds the live reservation of an existing container.
func (b *Embedded) reservationOf(ctx context.Context, ref ContainerRef) (*poolState, scheduler.Reservation, error) {
	ps, err := b.pool(ctx, ref.Pool)
	if err != nil {
		return nil, scheduler.Reservation{}, err
	}
	res, ok := ps.sched.Lookup(containerKey(ref.Pool, ref.Name))
	if !ok || res.ContainerID != ref.ContainerID {
		return nil, scheduler.Reservation{}, fmt.Errorf("container %s/%s (%s) is not on %s any more; refresh and apply again", ref.Pool, ref.Name, shortID(ref.ContainerID), ref.Host)
	}
	return ps, res, nil
}

func schedulerRequest(spec ContainerSpec) scheduler.Request {
	ports := make([]scheduler.PortRequest, len(spec.Ports))
	for i, p := range spec.Ports {
		ports[i] = scheduler.PortRequest{Internal: p.Internal, External: p.External, Protocol: p.Protocol}
	}
	return scheduler.Request{
		Key:         containerKey(spec.Pool, spec.Name),
		Name:        spec.Name,
		Resources:   scheduler.Resources(spec.Resources),
		Ports:       ports,
		Constraints: spec.Constraints,
		SpreadGroup: spec.SpreadGroup,
		MaxPerHost:  spec.MaxPerHost,
		Host:        spec.Host,
		Devices:     spec.GPUs,
	}
}

func engineSpec(spec ContainerSpec, res scheduler.Reservation) engine.ContainerSpec {
	// Bindings come in the order of the request, which has the interfaces.
	ports := make([]engine.PortBinding, len(res.Ports))
	for i, p := range res.Ports {
		ports[i] = engine.PortBinding{Internal: p.Internal, External: p.External, Protocol: p.Protocol}
		if i < len(spec.Ports) {
			ports[i].IP = spec.Ports[i].IP
		}
	}
	return engine.ContainerSpec{
		Pool:          spec.Pool,
		Name:          spec.Name,
		ReservationID: res.ID,
		Lease:         spec.lease,
		Image:         spec.Image,
		RepoDigest:    spec.RepoDigest,
		Command:       spec.Command,
		Env:           spec.Env,
		MilliCPU:      res.Resources.MilliCPU,
		MemoryBytes:   res.Resources.MemoryBytes,
		Ports:         ports,
		SpreadGroup:   spec.SpreadGroup,
		MaxPerHost:    spec.MaxPerHost,
		Constraints:   spec.Constraints,
		Restart:       spec.Restart,
		Healthcheck:   spec.Healthcheck,
		Limits:        engine.Limits(spec.Limits),
		StopTimeout:   spec.StopTimeout,
		Options:       spec.Options,
		GPUIDs:        res.DeviceIDs,
	}
}

// stateOf describes a container of eng, with the address its published
// ports are reached at.
func stateOf(eng *engine.Engine, c engine.Container) ContainerState {
	host := eng.Name()
	return ContainerState{
		Address:    eng.Address(),
		ImageID:    c.ImageID,
		RepoDigest: c.RepoDigest,
		Ref: ContainerRef{
			Pool: c.Pool, Name: c.Name, Host: host, ContainerID: c.ID,
			Resources: Resources{MilliCPU: c.MilliCPU, MemoryBytes: c.MemoryBytes},
		},
		ReservationID: c.ReservationID,
		Image:         c.Image,
		Resources:     Resources{MilliCPU: c.MilliCPU, MemoryBytes: c.MemoryBytes},
		Ports:         c.Ports,
		SpreadGroup:   c.SpreadGroup,
		MaxPerHost:    c.MaxPerHost,
		Constraints:   c.Constraints,
		Restart:       c.Restart,
		Limits:        Resources(c.Limits),
		IPAddress:     c.IPAddress,
		Running:       c.Running,
		Health:        c.Health,

		NetworkAddresses: c.NetworkAddresses,
		GPUIDs:           c.GPUIDs,
	}
}

func nameInUse(spec ContainerSpec, res scheduler.Reservation) error {
	return fmt.Errorf("%w: pool %s already has a container named %s (on %s, container %s): names are unique within a pool; choose another name or import it with `terraform import <address> %s/%s`",
		ErrDuplicateName, spec.Pool, spec.Name, res.Host, shortID(res.ContainerID), spec.Pool, spec.Name)
}

// hostLostError marks an engine that did not answer during a create: the
// create may place elsewhere. The engine's error names host and endpoint.
type hostLostError struct {
	err error
}

func (e *hostLostError) Error() string { return e.err.Error() }

func (e *hostLostError) Unwrap() error { return e.err }

// hostOrRequest tells a host problem from the request's own. An engine
// that did not answer is the host's problem: the create may place
// elsewhere. An engine that answered no (an image it cannot pull, a setting
// Docker refuses) fails this container only and says nothing of the host.
func hostOrRequest(eng *engine.Engine, spec ContainerSpec, err error) error {
	if engine.IsUnreachable(err) {
		return &hostLostError{err: err}
	}
	return fmt.Errorf("creating %s/%s on %s: %w", spec.Pool, spec.Name, eng.Name(), err)
}

func withHostErrors(err error, hostErrs []string) error {
	if len(hostErrs) == 0 {
		return err
	}
	return fmt.Errorf("%w; hosts that failed during this create: %s", err, strings.Join(hostErrs, "; "))
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
