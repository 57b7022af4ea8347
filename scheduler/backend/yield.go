package backend

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
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
// into the ledger, so that the next placement counts them. It returns the
// host ports the pool's containers publish there; nil when the host could
// not be listed.
func (b *Embedded) learnForeign(ctx context.Context, ps *poolState, host, pool string) map[int]bool {
	eng, listed, err := b.list(ctx, host, pool)
	if err != nil {
		return nil
	}
	published := map[int]bool{}
	var unknown []engine.Container
	for _, c := range listed {
		for _, p := range c.Ports {
			published[p.External] = true
		}
		if res, ok := ps.sched.Lookup(ledgerKey(c)); !ok || res.ContainerID != c.ID {
			unknown = append(unknown, c)
		}
	}
	inspected, err := inspectAll(ctx, eng, unknown)
	if err != nil {
		return published
	}
	for _, c := range inspected {
		ps.restoreForeign(host, c)
	}
	return published
}

// takenPortText finds the host port in Docker's "port is already
// allocated" (port allocator) and "address already in use" (userland
// proxy) messages.
var takenPortText = regexp.MustCompile(`(?:Bind for |listen \w+ )\S*:(\d+)`)

// heldOutside returns the fixed external port of spec that a failed start
// found taken on host by something that is not a container of the pool:
// another program, or a container Berth does not manage there. Waiting or
// placing again on that host cannot help.
func heldOutside(err error, spec ContainerSpec, published map[int]bool) (int, bool) {
	m := takenPortText.FindStringSubmatch(err.Error())
	if m == nil || published == nil {
		return 0, false
	}
	port, convErr := strconv.Atoi(m[1])
	if convErr != nil || published[port] {
		return 0, false
	}
	for _, p := range spec.Ports {
		if p.External == port {
			return port, true
		}
	}
	return 0, false // a port Berth picked: the next placement picks another
}

// portHeldError is a fixed external port in use on a host by something
// outside the pool.
type portHeldError struct {
	host, pool string
	port       int
	err        error
}

func (e *portHeldError) Error() string {
	return fmt.Sprintf("port %d on %s is in use by something Berth does not manage (not a container of pool %s): %v",
		e.port, e.host, e.pool, e.err)
}

func (e *portHeldError) Unwrap() error { return e.err }
