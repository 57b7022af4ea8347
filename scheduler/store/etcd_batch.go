package store

import (
	"sync"
	"sync/atomic"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Bounds on one batched transaction. etcd refuses a transaction of more
// than 128 operations (--max-txn-ops; a nested transaction's count against
// its parent's) and a request over 1.5 MiB (--max-request-bytes). A
// request bigger than these on its own still goes, alone, as before.
const (
	etcdBatchMaxOps   = 100
	etcdBatchMaxBytes = 1 << 20
)

// etcdInFlight is how many batched transactions one store view keeps in
// flight at once. Requests that arrive meanwhile wait and form the next
// batch, as Bolt's wait for its fsync.
const etcdInFlight = 4

// etcdRequest is one Commit, prepared for a transaction.
type etcdRequest struct {
	keys    []string // the etcd keys it writes, each once
	writes  []clientv3.Op
	guards  []clientv3.Cmp
	guarded []Op          // the ops with a guard, in the order of guards
	reads   []clientv3.Op // one per guarded op: what tells a failed guard
	size    int           // bytes of keys and values
	alone   bool          // commit in a transaction of its own
	done    chan commitResult
}

// etcdBatcher queues a store view's commits and groups them. It runs no
// goroutine of its own while idle: a flusher starts when work arrives and
// ends when the queue is empty, so a view dropped with its leadership
// leaves nothing behind.
type etcdBatcher struct {
	mu       sync.Mutex
	queue    []*etcdRequest
	flushers int
	// observe, when set, is told how many requests each transaction carried.
	observe atomic.Pointer[func(requests int)]
}

// add queues req and starts a flusher if fewer than etcdInFlight run.
func (b *etcdBatcher) add(req *etcdRequest, flush func()) {
	b.mu.Lock()
	b.queue = append(b.queue, req)
	start := b.flushers < etcdInFlight
	if start {
		b.flushers++
	}
	b.mu.Unlock()
	if start {
		go flush()
	}
}

// requeue puts requests back at the queue's front, for the next batch.
func (b *etcdBatcher) requeue(reqs []*etcdRequest) {
	if len(reqs) == 0 {
		return
	}
	b.mu.Lock()
	b.queue = append(reqs, b.queue...)
	b.mu.Unlock()
}

// take removes the next batch from the queue: requests in queue order
// whose keys are disjoint (in one transaction, every guard sees the state
// before any write, and etcd refuses a key written twice), within the
// bounds. A request marked alone goes by itself. On an empty queue the
// calling flusher ends: take returns nil.
func (b *etcdBatcher) take() []*etcdRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.queue) == 0 {
		b.flushers--
		return nil
	}
	if first := b.queue[0]; first.alone {
		b.queue = b.queue[1:]
		return []*etcdRequest{first}
	}
	var batch, rest []*etcdRequest
	keys := map[string]bool{}
	writes, guards, size := 0, 0, 0
	for _, req := range b.queue {
		fits := len(batch) == 0 ||
			!req.alone && writes+len(req.writes) <= etcdBatchMaxOps && guards+len(req.guards) <= etcdBatchMaxOps &&
				size+req.size <= etcdBatchMaxBytes && disjoint(keys, req.keys)
		if !fits {
			rest = append(rest, req)
			continue
		}
		batch = append(batch, req)
		for _, k := range req.keys {
			keys[k] = true
		}
		writes, guards, size = writes+len(req.writes), guards+len(req.guards), size+req.size
	}
	b.queue = rest
	return batch
}

func disjoint(keys map[string]bool, more []string) bool {
	for _, k := range more {
		if keys[k] {
			return false
		}
	}
	return true
}

// flush commits batches until the queue is empty.
func (e *Etcd) flush() {
	for batch := e.batches.take(); batch != nil; batch = e.batches.take() {
		e.commitBatch(batch)
	}
}

func (e *Etcd) observe(requests int) {
	if hook := e.batches.observe.Load(); hook != nil {
		(*hook)(requests)
	}
}
