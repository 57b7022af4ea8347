package engine

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultTimeout bounds each engine request when the provider block sets
// no engine_timeout. Long requests get more: a stop gets its stop timeout
// on top, a pull this much between two progress messages.
const DefaultTimeout = 30 * time.Second

// redialAfter is how long requests to an engine that did not answer fail at
// once with that failure; then one request tries again, and the others
// keep failing at once until it has its answer. A wedged engine then costs
// one engine_timeout per redialAfter, not one per request.
const redialAfter = 5 * time.Second

// do runs one request under the engine's deadline (timeout plus extra),
// once the API version is settled. The request's own error comes back when
// the engine answered; an *UnreachableError when it did not.
func (e *Engine) do(ctx context.Context, op string, extra time.Duration, request func(context.Context) error) error {
	if err := e.negotiate(ctx); err != nil {
		return err
	}
	return e.send(ctx, op, extra, request)
}

// send is do without the version negotiation (the ping itself uses it).
func (e *Engine) send(ctx context.Context, op string, extra time.Duration, request func(context.Context) error) error {
	probe, err := e.reach.admit(time.Now())
	if err != nil {
		return err
	}
	e.calls.Add(1)
	limit := e.timeout + extra
	callCtx, cancel := context.WithTimeoutCause(ctx, limit, errEngineDeadline)
	defer cancel()
	err = request(callCtx)
	unreachable := e.unanswered(ctx, callCtx, op, limit, err)
	switch {
	case unreachable != nil:
		e.reach.record(unreachable, time.Now(), probe)
		return unreachable
	case err != nil && ctx.Err() != nil:
		e.reach.release(probe) // the caller gave up: nothing learnt about the engine
	default:
		e.reach.record(nil, time.Now(), probe)
	}
	return err
}

// reachability remembers that an engine did not answer, so that requests
// fail at once instead of each waiting for the same failure again.
type reachability struct {
	mu      sync.Mutex
	down    *UnreachableError
	retryAt time.Time
	probing bool
}

// admit returns the recorded failure while requests must not try the
// engine; probe is true for the one request that tries it again.
func (r *reachability) admit(now time.Time) (probe bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down == nil {
		return false, nil
	}
	if r.probing || now.Before(r.retryAt) {
		return false, r.down
	}
	r.probing = true
	return true, nil
}

// record notes a request's outcome: down is nil when the engine answered.
func (r *reachability) record(down *UnreachableError, now time.Time, probe bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if probe {
		r.probing = false
	}
	r.down = down
	if down != nil {
		r.retryAt = now.Add(redialAfter)
	}
}

func (r *reachability) release(probe bool) {
	if !probe {
		return
	}
	r.mu.Lock()
	r.probing = false
	r.mu.Unlock()
}

// negotiation settles the API version once, before any request that
// encodes filters: the Docker client reads its version for them without the
// lock its own lazy negotiation takes, so two first requests at once would
// race. No lock is held across the ping: later callers wait on a channel,
// within their own context.
type negotiation struct {
	mu       sync.Mutex
	done     bool
	inFlight chan struct{}
}

func (e *Engine) negotiate(ctx context.Context) error {
	for {
		n := &e.negotiation
		n.mu.Lock()
		if n.done {
			n.mu.Unlock()
			return nil
		}
		if wait := n.inFlight; wait != nil {
			n.mu.Unlock()
			select {
			case <-wait:
				continue // settled, or failed: then this caller tries in turn
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		n.inFlight = make(chan struct{})
		n.mu.Unlock()

		err := e.send(ctx, "ping", 0, func(ctx context.Context) error {
			ping, err := e.api.Ping(ctx)
			if err == nil {
				e.api.NegotiateAPIVersionPing(ping)
			}
			return err
		})
		n.mu.Lock()
		n.done = err == nil
		close(n.inFlight)
		n.inFlight = nil
		n.mu.Unlock()
		if err != nil {
			return e.fail("ping", err)
		}
		return nil
	}
}

// dialer dials the engine and keeps the last dial failure: the Docker
// client reports refused and timed-out connections alike, without it.
type dialer struct {
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	last atomic.Pointer[error]
}

func (d *dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := d.dial(ctx, network, addr)
	if err != nil {
		d.last.Store(&err)
	} else {
		d.last.Store(nil)
	}
	return conn, err
}

func (d *dialer) lastError() error {
	if d == nil {
		return nil
	}
	if err := d.last.Load(); err != nil {
		return *err
	}
	return nil
}
