package client

import (
	"context"
	"sync"

	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

// readBatcher coalesces concurrent reads: while one batch is in flight,
// new reads queue, and the next batch carries all of them. A refresh of
// hundreds of containers (ten at a time from Terraform) then costs a few
// requests, with no added delay when reads come one by one.
type readBatcher struct {
	send sendReads

	mu      sync.Mutex // guards queue and sending; never held across I/O
	queue   []*pendingRead
	sending bool
}

type pendingRead struct {
	ctx   context.Context
	ref   backend.ContainerRef
	state *backend.ContainerState
	err   error
	done  chan struct{}
}

// sendReads reads refs in one request: one state and one error per ref,
// or an error for the whole batch.
type sendReads func(context.Context, []backend.ContainerRef) ([]*backend.ContainerState, []error, error)

func newReadBatcher(send sendReads) *readBatcher {
	return &readBatcher{send: send}
}

func (b *readBatcher) read(ctx context.Context, ref backend.ContainerRef) (*backend.ContainerState, error) {
	p := &pendingRead{ctx: ctx, ref: ref, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, p)
	lead := !b.sending
	b.sending = true
	b.mu.Unlock()
	if lead {
		b.drain()
	}
	select {
	case <-p.done:
		return p.state, p.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// drain sends batches until the queue is empty. It runs in the goroutine
// of the read that found no batch in flight.
func (b *readBatcher) drain() {
	for {
		b.mu.Lock()
		n := min(len(b.queue), api.MaxReadBatch)
		batch := b.queue[:n:n]
		b.queue = b.queue[n:]
		if n == 0 {
			b.sending = false
		}
		b.mu.Unlock()
		if n == 0 {
			return
		}
		b.sendBatch(batch)
	}
}

func (b *readBatcher) sendBatch(batch []*pendingRead) {
	live := batch[:0:0]
	refs := make([]backend.ContainerRef, 0, len(batch))
	for _, p := range batch {
		if p.ctx.Err() != nil {
			close(p.done)
			continue
		}
		live = append(live, p)
		refs = append(refs, p.ref)
	}
	if len(live) == 0 {
		return
	}
	// The batch outlives any one caller's cancellation; each caller still
	// stops waiting on its own context.
	ctx := context.WithoutCancel(live[0].ctx)
	states, errs, err := b.send(ctx, refs)
	for i, p := range live {
		if err != nil {
			p.err = err
		} else {
			p.state, p.err = states[i], errs[i]
		}
		close(p.done)
	}
}
