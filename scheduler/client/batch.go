package client

import (
	"context"
	"sync"
)

// batcher coalesces concurrent calls of one kind: while one batch is in
// flight, new calls queue, and the next batch carries all of them (up to
// max). Terraform runs ten operations at a time: a refresh of hundreds of
// containers, or the lease takes of a plan, then cost a few requests, with
// no added delay when calls come one by one.
type batcher[Q, A any] struct {
	send sendBatch[Q, A]
	max  int

	mu      sync.Mutex // guards queue and sending; never held across I/O
	queue   []*pendingCall[Q, A]
	sending bool
}

type pendingCall[Q, A any] struct {
	ctx    context.Context
	query  Q
	answer A
	err    error
	done   chan struct{}
}

// sendBatch sends queries in one request: one answer and one error per
// query, or an error for the whole batch.
type sendBatch[Q, A any] func(context.Context, []Q) ([]A, []error, error)

func newBatcher[Q, A any](limit int, send sendBatch[Q, A]) *batcher[Q, A] {
	return &batcher[Q, A]{send: send, max: limit}
}

func (b *batcher[Q, A]) call(ctx context.Context, query Q) (A, error) {
	p := &pendingCall[Q, A]{ctx: ctx, query: query, done: make(chan struct{})}
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
		return p.answer, p.err
	case <-ctx.Done():
		var none A
		return none, ctx.Err()
	}
}

// drain sends batches until the queue is empty. It runs in the goroutine
// of the call that found no batch in flight.
func (b *batcher[Q, A]) drain() {
	for {
		b.mu.Lock()
		n := min(len(b.queue), b.max)
		batch := b.queue[:n:n]
		b.queue = b.queue[n:]
		if n == 0 {
			b.sending = false
		}
		b.mu.Unlock()
		if n == 0 {
			return
		}
		b.sendOne(batch)
	}
}

func (b *batcher[Q, A]) sendOne(batch []*pendingCall[Q, A]) {
	live := batch[:0:0]
	queries := make([]Q, 0, len(batch))
	for _, p := range batch {
		if p.ctx.Err() != nil {
			close(p.done)
			continue
		}
		live = append(live, p)
		queries = append(queries, p.query)
	}
	if len(live) == 0 {
		return
	}
	// The batch outlives any one caller's cancellation; each caller still
	// stops waiting on its own context.
	ctx := context.WithoutCancel(live[0].ctx)
	answers, errs, err := b.send(ctx, queries)
	for i, p := range live {
		if err != nil {
			p.err = err
		} else {
			p.answer, p.err = answers[i], errs[i]
		}
		close(p.done)
	}
}
