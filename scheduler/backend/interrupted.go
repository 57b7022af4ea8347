package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/scheduler"
)

// An interrupted create (Ctrl-C, an answer lost on the way back, a crash)
// can leave its container behind: made by the engine, never started, known
// to no state. Berth starts every container it keeps, so a Berth container
// still in Docker's "created" state that no create of this process is
// working on is such a leftover. A plan does not count it; a create removes
// it and places its container as if it were not there. (A workspace that
// declares the same pool and name at the same moment would lose its
// half-made container too: names are unique within a pool.)

// interrupted inspects the container a Bound reservation names and reports
// whether it is a leftover of an interrupted create.
func (b *Embedded) interrupted(ctx context.Context, ps *poolState, res scheduler.Reservation) (*engine.Container, bool, error) {
	if _, mine := ps.own.get(res.ContainerID); mine {
		return nil, false, nil
	}
	eng, err := b.engines.Get(res.Host)
	if err != nil {
		return nil, false, err
	}
	c, err := eng.InspectContainer(ctx, res.ContainerID)
	if err != nil || c == nil {
		return nil, c == nil && err == nil, err
	}
	return c, c.State == container.StateCreated, nil
}

// forgetInterrupted releases a Bound reservation whose container is a
// leftover of an interrupted create, for a plan; it returns the name-in-use
// error when the container is a real one.
func (b *Embedded) forgetInterrupted(ctx context.Context, ps *poolState, spec ContainerSpec, res scheduler.Reservation) error {
	_, leftover, err := b.interrupted(ctx, ps, res)
	switch {
	case err != nil:
		return err
	case !leftover:
		return b.retireOrRefuse(ctx, ps, spec, res)
	}
	ps.leftovers.Store(res.Key, res)
	return ps.sched.Release(res.ID)
}

// removeForgotten removes the leftover a plan of this process stopped
// counting for spec's key, if any.
func (b *Embedded) removeForgotten(ctx context.Context, ps *poolState, spec ContainerSpec) error {
	held, ok := ps.leftovers.LoadAndDelete(containerKey(spec.Pool, spec.Name))
	res, isReservation := held.(scheduler.Reservation)
	if !ok || !isReservation {
		return nil
	}
	return b.removeLeftover(ctx, res.Host, res.ContainerID)
}

// removeInterrupted is forgetInterrupted for a create: the leftover
// container is removed from its engine first.
func (b *Embedded) removeInterrupted(ctx context.Context, ps *poolState, spec ContainerSpec, res scheduler.Reservation) error {
	c, leftover, err := b.interrupted(ctx, ps, res)
	switch {
	case err != nil:
		return err
	case !leftover:
		return b.retireOrRefuse(ctx, ps, spec, res)
	}
	if c != nil {
		if err := b.removeLeftover(ctx, res.Host, c.ID); err != nil {
			return err
		}
	}
	return ps.sched.Release(res.ID)
}

// takeOverNamed handles a create refused because spec's Docker name is
// taken on the engine. A leftover of this reservation's own create (a run
// cut short by a crash, whose container the engine made after all) is
// taken over: its id comes back. Another create's leftover is removed,
// and "" with no error makes this create place again. A real container
// is an error that says how to bring it under Berth.
func (b *Embedded) takeOverNamed(ctx context.Context, ps *poolState, eng *engine.Engine, spec ContainerSpec, res scheduler.Reservation) (string, error) {
	c, err := eng.InspectContainer(ctx, engine.DockerName(spec.Pool, spec.Name))
	if err != nil {
		return "", err
	}
	if c != nil && c.Pool == spec.Pool && c.Name == spec.Name && c.State == container.StateCreated {
		if c.ReservationID == res.ID {
			return c.ID, nil
		}
		if _, mine := ps.own.get(c.ID); !mine {
			return "", b.removeLeftover(ctx, eng.Name(), c.ID)
		}
	}
	return "", fmt.Errorf("a container named %s already exists on %s (pool %s): import it with `terraform import <address> %s/%s`, or remove it",
		spec.Pool+"."+spec.Name, res.Host, spec.Pool, spec.Pool, spec.Name)
}

func (b *Embedded) removeLeftover(ctx context.Context, host, id string) error {
	defer b.reads.changed(host)
	eng, err := b.engines.Get(host)
	if err != nil {
		return err
	}
	if err := eng.Remove(ctx, id); err != nil {
		return fmt.Errorf("removing the leftover of an interrupted create (%s) from %s: %w", shortID(id), host, err)
	}
	return nil
}

// interruptedCreateWait bounds the last wait for the container of a
// cancelled create to show up (50 ms doubling: about 1.5 s in all).
const interruptedCreateWait = 800 * time.Millisecond

// afterFailedCreate looks for the container a failed create call may have
// made all the same (the engine made it, the answer was lost, or the
// create was cancelled), by name and reservation label, and removes it,
// even after ctx ended. A container that cannot be removed comes back as a
// *leftoverError, so that state tracks it.
func (b *Embedded) afterFailedCreate(eng *engine.Engine, spec ContainerSpec, res scheduler.Reservation, why error, cancelled bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	c, err := eng.InspectContainer(ctx, engine.DockerName(spec.Pool, spec.Name))
	// A create cancelled on the way (Ctrl-C) goes on in the engine, which
	// registers the container only some time later: look again for a
	// short while before deciding that nothing was made.
	for wait := 50 * time.Millisecond; cancelled && err == nil && c == nil && wait <= interruptedCreateWait; wait *= 2 {
		time.Sleep(wait)
		c, err = eng.InspectContainer(ctx, engine.DockerName(spec.Pool, spec.Name))
	}
	if err != nil || c == nil || c.ReservationID != res.ID {
		return why // nothing made, or no way to know: the next apply finds it (interrupted)
	}
	if err := b.removeLeftover(ctx, eng.Name(), c.ID); err != nil {
		return &leftoverError{host: eng.Name(), id: c.ID, why: why, removal: err}
	}
	return why
}
