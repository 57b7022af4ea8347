package store

import (
	"context"
	"errors"
)

// Errors callers can test for with errors.Is.
var (
	ErrNotFound = errors.New("store: not found")
	ErrConflict = errors.New("store: revision changed")
	ErrClosed   = errors.New("store: closed")
	// ErrUnavailable: the store cannot take a write or answer a read now
	// (etcd lost its quorum, or no member answers). Retry later. Like the
	// end of a commit's ctx, it leaves the commit's outcome unknown: a
	// proposal already taken may land once the quorum is back.
	ErrUnavailable = errors.New("store: unavailable")
	// ErrFenced: this process is no longer the leader its store view was
	// made for, so its write was refused. It must stop writing.
	ErrFenced = errors.New("store: not the leader any more")
)

// Absent, as Op.Expect, requires that the key does not exist.
const Absent int64 = -1

// Item is one stored value and the revision that last wrote it.
type Item struct {
	Key      string
	Value    []byte
	Revision int64
}

// Op is one write of a commit.
type Op struct {
	Bucket string
	Key    string
	Value  []byte // nil deletes the key
	// Expect guards the write: 0 writes unconditionally, Absent requires
	// that the key does not exist, n > 0 that it is still at revision n.
	Expect int64
}

// Store holds berthd's durable records.
type Store interface {
	// Get returns one item, or ErrNotFound.
	Get(ctx context.Context, bucket, key string) (Item, error)
	// List returns the bucket's items whose key starts with prefix, in key order.
	List(ctx context.Context, bucket, prefix string) ([]Item, error)
	// Commit writes ops atomically and durably: when it returns nil, the
	// writes survive a crash. If any Expect fails, nothing is written and
	// the error wraps ErrConflict. It returns the commit's revision.
	// When ctx ends first, the writes may or may not have been committed.
	Commit(ctx context.Context, ops ...Op) (int64, error)
	// Close finishes pending commits and releases the store.
	Close() error
}
