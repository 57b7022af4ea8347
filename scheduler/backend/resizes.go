package backend

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/scheduler"
)

// An in-place resize takes capacity as a create does, so it is verified
// against the engine as a create is (verify.go), and other processes must
// see it: Docker cannot rewrite the labels that record what a container
// reserves, so every resize leaves a marker on the engine (a labelled
// volume, engine.ResizeMarker) with the new reservation. Whoever counts a
// host (a create's verification, another resize's, a pool loading its
// ledger) takes each container's newest marker over its labels.
//
// A growing resize mirrors a create: the marker is made first (its
// creation time orders it against creates, as a container's does), the
// host is checked counting what was there before it, Docker's limits are
// changed, and the host is checked again counting every running container
// and every marker, later ones included. Of a resize and a create that
// overflow the host together, whichever checks last sees the other (the
// create runs before its last check; the marker exists before the resize's
// last check), so they never both stay. A resize that yields is rolled
// back, limits first and marker last (others over-count meanwhile, which
// is safe), and fails with the explanation. A shrinking resize cannot
// overflow anything: limits first, then its marker.

// errResizeYielded is a growing resize that lost its host to a container
// (or another resize) of another process.
var errResizeYielded = errors.New("yielded to a container created or resized at the same time by another process")

// ResizeContainer resizes the reservation first (atomically, so two resizes
// of this process cannot both take the last capacity), then the container,
// verified against the engine; a failed resize gives the capacity back.
func (b *Embedded) ResizeContainer(ctx context.Context, current ContainerState, to Resources) (ContainerState, error) {
	ps, res, err := b.reservationOf(ctx, current.Ref)
	if err != nil {
		return ContainerState{}, err
	}
	if _, err := ps.sched.Resize(res.ID, scheduler.Resources(to)); err != nil {
		return ContainerState{}, err
	}
	eng, err := b.engines.Get(current.Ref.Host)
	if err == nil {
		err = b.resizeOn(ctx, ps, eng, current, Resources(res.Resources), to)
		b.reads.changed(current.Ref.Host)
	}
	if err != nil {
		_, _ = ps.sched.Resized(res.ID, res.Resources)
		return ContainerState{}, fmt.Errorf("resizing %s on %s: %w", current.Ref.Name, current.Ref.Host, err)
	}
	current.Resources = to
	return current, nil
}

// resizeOn changes the container's limits from one reservation to another
// and records the change in a marker, verifying a growth (see above).
func (b *Embedded) resizeOn(ctx context.Context, ps *poolState, eng *engine.Engine, current ContainerState, from, to Resources) error {
	ref := current.Ref
	earlier, err := eng.ListResizeMarkers(ctx, ref.Pool, ref.ContainerID)
	if err != nil {
		return err
	}
	marker := engine.ResizeMarker{Pool: ref.Pool, Name: ref.Name, ContainerID: ref.ContainerID, MilliCPU: to.MilliCPU, MemoryBytes: to.MemoryBytes}
	for _, m := range earlier {
		marker.Sequence = max(marker.Sequence, m.Sequence+1)
	}
	update := func(ctx context.Context, r Resources) error {
		return eng.Update(ctx, ref.ContainerID, engine.Update{MilliCPU: r.MilliCPU, MemoryBytes: r.MemoryBytes, Limits: engine.Limits(current.Limits)})
	}
	if to.MilliCPU <= from.MilliCPU && to.MemoryBytes <= from.MemoryBytes {
		if err := update(ctx, to); err != nil {
			return err
		}
		if _, err := eng.WriteResizeMarker(ctx, marker); err != nil {
			return rollBack(eng, marker, func(ctx context.Context) error { return update(ctx, from) }, err)
		}
		_ = removeMarkers(ctx, eng, earlier) // superseded: harmless when left
		return nil
	}

	if marker, err = eng.WriteResizeMarker(ctx, marker); err != nil {
		return err
	}
	undo := func(ctx context.Context) error { return update(ctx, from) }
	if overflow, err := b.verifyResize(ctx, ps, eng, marker, false); err != nil || overflow != "" {
		return rollBack(eng, marker, undo, yieldedOr(err, overflow, from))
	}
	if err := update(ctx, to); err != nil {
		return rollBack(eng, marker, undo, err)
	}
	if overflow, err := b.verifyResize(ctx, ps, eng, marker, true); err != nil || overflow != "" {
		return rollBack(eng, marker, undo, yieldedOr(err, overflow, from))
	}
	_ = removeMarkers(ctx, eng, earlier)
	return nil
}

func yieldedOr(err error, overflow string, from Resources) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("%w (%s); it keeps %s: plan and apply again", errResizeYielded, overflow, scheduler.Resources(from))
}

// rollBack restores the old limits, then removes the marker, even after
// the resize's own context ended. When the limits cannot be restored the
// marker stays: it is then the truth others must count.
func rollBack(eng *engine.Engine, marker engine.ResizeMarker, undo func(context.Context) error, why error) error {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if err := undo(ctx); err != nil {
		return fmt.Errorf("%w; restoring the old limits failed too (%w): the container keeps the new size", why, err)
	}
	if marker.Volume == "" {
		return why
	}
	if err := eng.RemoveResizeMarker(ctx, marker); err != nil {
		return fmt.Errorf("%w; removing resize marker %s failed (%w): the host counts the new size until it is removed", why, marker.Volume, err)
	}
	return why
}

// verifyResize checks the container's host with the resize the marker
// records: "" when it fits, else what the host would hold. The resize is
// ordered at the end of its marker's second, so containers created within
// that second count as earlier ones.
func (b *Embedded) verifyResize(ctx context.Context, ps *poolState, eng *engine.Engine, marker engine.ResizeMarker, final bool) (string, error) {
	listed, markers, err := listWithResizes(ctx, eng, marker.Pool)
	if err != nil {
		return "", err
	}
	mine := engine.Container{
		ID: marker.ContainerID, Pool: marker.Pool, Name: marker.Name,
		Created:  marker.Created.Truncate(time.Second).Add(time.Second - time.Nanosecond),
		MilliCPU: marker.MilliCPU, MemoryBytes: marker.MemoryBytes,
	}
	others, _, err := b.othersOn(ctx, ps, eng, listed, mine, markers, final)
	if err != nil {
		return "", err
	}
	return overflowInOrder(hostOf(ps, eng.Name()), mine, others, 0, final), nil
}

// listWithResizes lists a host's containers of the pool and their resize
// markers, side by side.
func listWithResizes(ctx context.Context, eng *engine.Engine, pool string) ([]engine.Container, []engine.ResizeMarker, error) {
	var markers []engine.ResizeMarker
	var markersErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		markers, markersErr = eng.ListResizeMarkers(ctx, pool, "")
	}()
	listed, err := eng.ListContainers(ctx, pool)
	wg.Wait()
	return listed, markers, errors.Join(err, markersErr)
}

// newestResizes picks each container's newest marker among those made up
// to until (in whole seconds: a marker of until's second counts); a zero
// until takes every marker.
func newestResizes(markers []engine.ResizeMarker, until time.Time) map[string]engine.ResizeMarker {
	newest := map[string]engine.ResizeMarker{}
	for _, m := range markers {
		if !until.IsZero() && m.Created.After(until) {
			continue
		}
		if seen, ok := newest[m.ContainerID]; !ok || m.Newer(seen) {
			newest[m.ContainerID] = m
		}
	}
	return newest
}

// applyResizes sets each container's reservation to its newest marker's.
func applyResizes(containers []engine.Container, markers []engine.ResizeMarker) {
	resized := newestResizes(markers, time.Time{})
	for i, c := range containers {
		if m, ok := resized[c.ID]; ok {
			containers[i].MilliCPU, containers[i].MemoryBytes = m.MilliCPU, m.MemoryBytes
		}
	}
}

// learnResize records, in the ledger, the size another process resized a
// known container to.
func (ps *poolState) learnResize(c engine.Container) {
	res, ok := ps.sched.Lookup(ledgerKey(c))
	to := scheduler.Resources{MilliCPU: c.MilliCPU, MemoryBytes: c.MemoryBytes}
	if ok && res.ContainerID == c.ID && res.Resources != to {
		_, _ = ps.sched.Resized(res.ID, to)
	}
}

// removeMarkers removes markers a newer one supersedes, or whose container
// is gone.
func removeMarkers(ctx context.Context, eng *engine.Engine, markers []engine.ResizeMarker) error {
	for _, m := range markers {
		if err := eng.RemoveResizeMarker(ctx, m); err != nil {
			return err
		}
	}
	return nil
}
