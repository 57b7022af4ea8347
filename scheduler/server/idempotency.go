package server

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/store"
)

// bucketIdempotency holds one record per (token, key): the digest of the
// first request and, once it finished, its answer.
const bucketIdempotency = "idempotency"

// idemRecord is what the store keeps for a key.
type idemRecord struct {
	Digest  [sha256.Size]byte
	Done    bool // false: started before a crash or shutdown; a repeat runs it again
	Status  int
	Body    []byte
	Created time.Time
}

// operation is a mutating request running now, detached from its client.
type operation struct {
	digest [sha256.Size]byte
	done   chan struct{}
	answer reply
}

// idempotency runs each (token, key) once and answers repeats from the
// record of the first run.
type idempotency struct {
	store        store.Store
	clock        func() time.Time
	waitInFlight time.Duration
	opTimeout    time.Duration

	mu      sync.Mutex // guards running and closed; never held across I/O
	running map[string]*operation
	closed  bool           // shutting down: no new operation starts
	ops     sync.WaitGroup // detached operations, for shutdown
}

// idemCall is one mutating request as the idempotency layer sees it.
type idemCall struct {
	scope  string // token name + key
	digest [sha256.Size]byte
	// recordStart makes the start durable before the operation runs, for
	// operations on engines: after a crash the repeat knows it started.
	recordStart bool
	run         func(ctx context.Context) reply
}

// do answers a mutating request: the first answer to the key, marked as a
// replay; 422 for the same key with another request; or the operation,
// run once, detached from the client's connection. A repeat while it runs
// waits up to waitInFlight, then gets 409 in_flight.
func (m *idempotency) do(ctx context.Context, call idemCall) (reply, bool) {
	m.mu.Lock()
	if op, ok := m.running[call.scope]; ok {
		m.mu.Unlock()
		if op.digest != call.digest {
			return reused(), false
		}
		return m.await(ctx, op, true)
	}
	if m.closed {
		m.mu.Unlock()
		return replyErr(apiError(api.CodeShuttingDown, "berthd is shutting down; repeat the request with the same key")), false
	}
	op := &operation{digest: call.digest, done: make(chan struct{})}
	m.running[call.scope] = op
	m.ops.Add(1)
	m.mu.Unlock()

	finish := func(answer reply) {
		op.answer = answer
		m.mu.Lock()
		delete(m.running, call.scope)
		m.mu.Unlock()
		close(op.done)
		m.ops.Done()
	}
	rec, found, err := m.load(ctx, call.scope)
	switch {
	case err != nil:
		finish(replyErr(err))
		return op.answer, false
	case found && rec.Digest != call.digest:
		finish(reused())
		return op.answer, false
	case found && rec.Done:
		finish(reply{status: rec.Status, body: rec.Body})
		return op.answer, true
	}
	// New, or started before a crash: run it (operations are safe to run
	// again: a create finds the container its first run made).
	created := m.clock()
	if found {
		created = rec.Created
	}
	if call.recordStart && !found {
		if err := m.save(ctx, call.scope, idemRecord{Digest: call.digest, Created: created}); err != nil {
			finish(replyErr(err))
			return op.answer, false
		}
	}
	go func() {
		runCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.opTimeout)
		defer cancel()
		pending := &pendingWrites{}
		answer := call.run(context.WithValue(runCtx, pendingWritesKey{}, pending))
		if answer.retryAfter {
			// Not an answer to keep (shutting down): the repeat runs it.
			if len(pending.ops) > 0 {
				if _, err := m.store.Commit(runCtx, pending.ops...); err != nil {
					answer = replyErr(err)
				}
			}
			finish(answer)
			return
		}
		if err := m.save(runCtx, call.scope, idemRecord{Digest: call.digest, Done: true, Status: answer.status, Body: answer.body, Created: created}, pending.ops...); err != nil {
			answer = replyErr(fmt.Errorf("the operation ran but its answer could not be recorded (repeat the request with the same key): %w", err))
		}
		finish(answer)
	}()
	return m.await(ctx, op, false)
}

// await waits for a running operation, within the client's patience; a
// repeat's answer is the first request's, marked as a replay.
func (m *idempotency) await(ctx context.Context, op *operation, repeat bool) (reply, bool) {
	timer := time.NewTimer(m.waitInFlight)
	defer timer.Stop()
	select {
	case <-op.done:
		return op.answer, repeat
	case <-timer.C:
	case <-ctx.Done():
	}
	return replyErr(apiError(api.CodeInFlight, "a request with this Idempotency-Key is still running; repeat it later with the same key")), false
}

func reused() reply {
	return replyErr(apiError(api.CodeIdempotencyKeyReused, "this Idempotency-Key was used for a different request; use a new key for a new request"))
}

func (m *idempotency) load(ctx context.Context, scope string) (idemRecord, bool, error) {
	item, err := m.store.Get(ctx, bucketIdempotency, scope)
	if errors.Is(err, store.ErrNotFound) {
		return idemRecord{}, false, nil
	}
	if err != nil {
		return idemRecord{}, false, err
	}
	rec, err := decodeRecord(item.Value)
	if err != nil {
		return idemRecord{}, false, fmt.Errorf("idempotency record %q: %w", scope, err)
	}
	return rec, true, nil
}

// save writes the record, and with it the writes its request made.
func (m *idempotency) save(ctx context.Context, scope string, rec idemRecord, with ...store.Op) error {
	_, err := m.store.Commit(ctx, append(with, store.Op{Bucket: bucketIdempotency, Key: scope, Value: rec.encode()})...)
	return err
}

// Records are stored in a binary layout (version, digest, done, status,
// created, then the answer's body as is): every mutating request writes
// one, and JSON would base64 the body. Records written as JSON by earlier
// versions are still read.
const (
	recordVersion    = 1
	recordHeaderSize = 1 + sha256.Size + 1 + 2 + 8
)

func (rec idemRecord) encode() []byte {
	out := make([]byte, recordHeaderSize, recordHeaderSize+len(rec.Body))
	out[0] = recordVersion
	copy(out[1:], rec.Digest[:])
	if rec.Done {
		out[1+sha256.Size] = 1
	}
	binary.BigEndian.PutUint16(out[2+sha256.Size:], uint16(rec.Status))
	binary.BigEndian.PutUint64(out[4+sha256.Size:], uint64(rec.Created.UnixNano()))
	return append(out, rec.Body...)
}

func decodeRecord(data []byte) (idemRecord, error) {
	var rec idemRecord
	if len(data) > 0 && data[0] == '{' {
		err := json.Unmarshal(data, &rec)
		return rec, err
	}
	if len(data) < recordHeaderSize || data[0] != recordVersion {
		return rec, fmt.Errorf("unknown record layout (%d bytes)", len(data))
	}
	copy(rec.Digest[:], data[1:])
	rec.Done = data[1+sha256.Size] == 1
	rec.Status = int(binary.BigEndian.Uint16(data[2+sha256.Size:]))
	rec.Created = time.Unix(0, int64(binary.BigEndian.Uint64(data[4+sha256.Size:])))
	if body := data[recordHeaderSize:]; len(body) > 0 {
		rec.Body = body
	}
	return rec, nil
}

// expire forgets records older than retention.
func (m *idempotency) expire(ctx context.Context, retention time.Duration) error {
	items, err := m.store.List(ctx, bucketIdempotency, "")
	if err != nil {
		return err
	}
	cutoff := m.clock().Add(-retention)
	var ops []store.Op
	for _, item := range items {
		if rec, err := decodeRecord(item.Value); err == nil && rec.Done && rec.Created.Before(cutoff) {
			ops = append(ops, store.Op{Bucket: bucketIdempotency, Key: item.Key, Expect: item.Revision})
		}
	}
	if len(ops) == 0 {
		return nil
	}
	_, err = m.store.Commit(ctx, ops...)
	return err
}

// close starts no new operation and waits until every detached one has
// finished, or ctx ends.
func (m *idempotency) close(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	done := make(chan struct{})
	go func() { m.ops.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pendingWrites collects the store writes of a mutating request, so that
// they commit in one transaction with the request's idempotency record:
// one fsync per request, and the answer is recorded exactly when its
// effects are.
type pendingWrites struct{ ops []store.Op }

type pendingWritesKey struct{}

// commit writes ops with the request's record when ctx belongs to a
// mutating request, and at once otherwise.
func commit(ctx context.Context, st store.Store, ops ...store.Op) error {
	if pending, ok := ctx.Value(pendingWritesKey{}).(*pendingWrites); ok {
		pending.ops = append(pending.ops, ops...)
		return nil
	}
	_, err := st.Commit(ctx, ops...)
	return err
}

// digestOf identifies a request: method, path and body.
func digestOf(r *http.Request, body []byte) [sha256.Size]byte {
	h := sha256.New()
	_, _ = fmt.Fprintf(h, "%s %s\n", r.Method, r.URL.RequestURI())
	_, _ = h.Write(body)
	var sum [sha256.Size]byte
	copy(sum[:], h.Sum(nil))
	return sum
}
