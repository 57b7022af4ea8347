package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// FileName is the store's file in the data directory.
const FileName = "berthd.db"

// maxBatch bounds how many requests one transaction commits, so one slow
// fsync does not grow an unbounded transaction behind it.
const maxBatch = 4096

// initialMmapSize is address space, not memory: growing the file inside it
// needs no remap (a remap waits for every read transaction).
const initialMmapSize = 1 << 30

var (
	metaBucket  = []byte("meta")
	revisionKey = []byte("revision")
)

// Bolt is the embedded store: one bbolt file, one writer goroutine.
type Bolt struct {
	db       *bolt.DB
	requests chan *commitRequest

	closeOnce sync.Once
	closing   chan struct{}
	stopped   chan struct{}
	// mu makes Commit and Close exclusive: no request is queued once the
	// writer has been told to stop.
	mu     sync.RWMutex
	closed bool

	observe atomic.Pointer[func(requests int)]
}

type commitRequest struct {
	ops  []Op
	done chan commitResult
}

type commitResult struct {
	revision int64
	err      error
}

var _ Store = (*Bolt)(nil)

// OpenBolt opens (or creates) the store in dir. Another process holding
// the file makes it fail after lockTimeout instead of waiting for ever.
func OpenBolt(dir string, lockTimeout time.Duration) (*Bolt, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: data directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: lockTimeout,
		// The free pages are found again by a scan at open instead of being
		// written with every commit: with the map freelist a commit writes
		// only its own pages. Data and meta pages are still fsynced.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
		// Room to grow without remapping, which waits for every reader.
		InitialMmapSize: initialMmapSize,
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("store: %s is locked by another process (is another berthd running on this data directory?)", path)
		}
		return nil, fmt.Errorf("store: opening %s: %w", path, err)
	}
	b := &Bolt{
		db:       db,
		requests: make(chan *commitRequest, maxBatch),
		closing:  make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	go b.write()
	return b, nil
}

// Get implements Store.
func (b *Bolt) Get(ctx context.Context, bucket, key string) (Item, error) {
	if err := ctx.Err(); err != nil {
		return Item{}, err
	}
	var item Item
	err := b.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket([]byte(bucket))
		if bk == nil {
			return ErrNotFound
		}
		raw := bk.Get([]byte(key))
		if raw == nil {
			return ErrNotFound
		}
		item = decode(key, raw)
		return nil
	})
	return item, err
}

// List implements Store.
func (b *Bolt) List(ctx context.Context, bucket, prefix string) ([]Item, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var items []Item
	err := b.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket([]byte(bucket))
		if bk == nil {
			return nil
		}
		c := bk.Cursor()
		p := []byte(prefix)
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			items = append(items, decode(string(k), v))
		}
		return nil
	})
	return items, err
}

// Commit implements Store: the request joins the writer's next transaction.
func (b *Bolt) Commit(ctx context.Context, ops ...Op) (int64, error) {
	if err := validate(ops); err != nil {
		return 0, err
	}
	req := &commitRequest{ops: ops, done: make(chan commitResult, 1)}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return 0, ErrClosed
	}
	select {
	case b.requests <- req:
		b.mu.RUnlock()
	case <-ctx.Done():
		b.mu.RUnlock()
		return 0, ctx.Err()
	}
	select {
	case res := <-req.done:
		return res.revision, res.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// write is the single writer: it takes every request waiting, commits them
// in one transaction (one fsync) and then answers each.
func (b *Bolt) write() {
	defer close(b.stopped)
	batch := make([]*commitRequest, 0, maxBatch)
	for {
		select {
		case req := <-b.requests:
			batch = append(batch[:0], req)
		case <-b.closing:
			// Close holds mu: nothing more is queued. Finish what is.
			for {
				select {
				case req := <-b.requests:
					b.commit([]*commitRequest{req})
				default:
					return
				}
			}
		}
	drain:
		for len(batch) < maxBatch {
			select {
			case req := <-b.requests:
				batch = append(batch, req)
			default:
				break drain
			}
		}
		b.commit(batch)
	}
}

// ObserveBatches tells hook how many commits each transaction carried.
func (b *Bolt) ObserveBatches(hook func(requests int)) { b.observe.Store(&hook) }

// commit runs one transaction for a batch. Requests apply in order, each
// with its own revision; a request whose Expect fails is skipped (its
// answer is ErrConflict) without failing the others.
func (b *Bolt) commit(batch []*commitRequest) {
	results := make([]commitResult, len(batch))
	err := b.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(metaBucket)
		if err != nil {
			return err
		}
		revision := int64(0)
		if raw := meta.Get(revisionKey); raw != nil {
			revision = int64(binary.BigEndian.Uint64(raw))
		}
		for i, req := range batch {
			if err := checkTx(tx, req.ops); err != nil {
				results[i].err = err
				continue
			}
			revision++
			for _, op := range req.ops {
				if err := applyTx(tx, op, revision); err != nil {
					return err
				}
			}
			results[i].revision = revision
		}
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], uint64(revision))
		return meta.Put(revisionKey, buf[:])
	})
	if hook := b.observe.Load(); hook != nil {
		(*hook)(len(batch))
	}
	for i, req := range batch {
		if err != nil {
			results[i] = commitResult{err: fmt.Errorf("store: commit: %w", err)}
		}
		req.done <- results[i]
	}
}

func checkTx(tx *bolt.Tx, ops []Op) error {
	for _, op := range ops {
		rev, exists := int64(0), false
		if bk := tx.Bucket([]byte(op.Bucket)); bk != nil {
			if raw := bk.Get([]byte(op.Key)); raw != nil {
				rev, exists = decode(op.Key, raw).Revision, true
			}
		}
		if err := expectation(op, rev, exists); err != nil {
			return err
		}
	}
	return nil
}

func applyTx(tx *bolt.Tx, op Op, revision int64) error {
	bk, err := tx.CreateBucketIfNotExists([]byte(op.Bucket))
	if err != nil {
		return err
	}
	if op.Value == nil {
		return bk.Delete([]byte(op.Key))
	}
	return bk.Put([]byte(op.Key), encode(op.Value, revision))
}

// Close implements Store: queued commits finish first.
func (b *Bolt) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		close(b.closing)
		<-b.stopped
	})
	return b.db.Close()
}

// Values are stored behind the revision that wrote them (8 bytes, big endian).
func encode(value []byte, revision int64) []byte {
	out := make([]byte, 8+len(value))
	binary.BigEndian.PutUint64(out, uint64(revision))
	copy(out[8:], value)
	return out
}

func decode(key string, raw []byte) Item {
	// bbolt's memory is valid only inside the transaction: copy.
	return Item{Key: key, Revision: int64(binary.BigEndian.Uint64(raw[:8])), Value: bytes.Clone(raw[8:])}
}
