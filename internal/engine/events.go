package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
)

// ContainerEvent is one lifecycle event of a Berth container: the engine
// logs creates, starts, deaths and removals in one order, under one lock,
// and gives every subscriber that order.
type ContainerEvent struct {
	Action    string    // "create", "start", "die", "destroy", …
	Container Container // the id and what the labels say; no state, no Created
}

// WatchContainers streams the lifecycle events of the pool's containers to
// each, in the engine's order, until ctx ends or the stream breaks; it
// returns why. Events the engine still holds from since on are replayed
// first, in the same order and without a gap (the engine subscribes and
// replays under one lock), so a subscription that reaches the engine after
// a create still sees it. Events of containers with malformed Berth labels
// are skipped, as lists skip them.
//
// The stream has no deadline of its own: it lives as long as ctx. Whoever
// waits on it bounds the wait and falls back to a list.
func (e *Engine) WatchContainers(ctx context.Context, pool string, since time.Time, each func(ContainerEvent)) error {
	if err := e.negotiate(ctx); err != nil {
		return err
	}
	e.calls.Add(1)
	msgs, errs := e.api.Events(ctx, events.ListOptions{
		Since:   fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond()),
		Filters: filters.NewArgs(filters.Arg("type", string(events.ContainerEventType)), filters.Arg("label", LabelPool+"="+pool)),
	})
	for {
		select {
		case m := <-msgs:
			c := Container{ID: m.Actor.ID}
			if decodeLabels(&c, m.Actor.Attributes) != nil {
				continue
			}
			each(ContainerEvent{Action: string(m.Action), Container: c})
		case err := <-errs:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return e.fail("watch containers", err)
		}
	}
}
