package backend

import (
	"context"
	"errors"
	"strings"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
)

// Docker gives a container its Created time before the container shows in
// lists, so a verification can miss a container of another process that
// was created just before its own, and both would stay. Two things close
// that window: when both publish the same host port, the engine refuses
// the second start; and every create verifies again once its container
// runs, by when the containers created before it have become visible
// (their creates began earlier). The later container then yields, as after
// the first verification, and places again.

// errYieldedLate is a create that yielded at its second verification.
var errYieldedLate = errors.New("yielded to a container created before it")

// portTaken reports whether a start failed because the host port is bound.
// Docker reports it only as text, from its port allocator or its proxy.
func portTaken(err error) bool {
	if err == nil {
		return false
	}
	text := err.Error()
	return strings.Contains(text, "port is already allocated") || strings.Contains(text, "address already in use")
}

// learnForeign puts the host's containers that this process does not know
// into the ledger, so that the next placement counts them.
func (b *Embedded) learnForeign(ctx context.Context, ps *poolState, host, pool string) {
	eng, listed, err := b.list(ctx, host, pool)
	if err != nil {
		return
	}
	var unknown []engine.Container
	for _, c := range listed {
		if res, ok := ps.sched.Lookup(containerKey(c.Pool, c.Name)); !ok || res.ContainerID != c.ID {
			unknown = append(unknown, c)
		}
	}
	inspected, err := inspectAll(ctx, eng, unknown)
	if err != nil {
		return
	}
	for _, c := range inspected {
		ps.restoreForeign(host, c)
	}
}
