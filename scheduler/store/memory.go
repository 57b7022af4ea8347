package store

import (
	"bytes"
	"context"
	"sort"
	"strings"
	"sync"
)

// Memory is the Store contract without a disk: for tests and for the
// benchmark's baseline. It loses everything when the process ends.
type Memory struct {
	mu       sync.Mutex
	buckets  map[string]map[string]Item
	revision int64
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{buckets: map[string]map[string]Item{}}
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, bucket, key string) (Item, error) {
	if err := ctx.Err(); err != nil {
		return Item{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	item, ok := m.buckets[bucket][key]
	if !ok {
		return Item{}, ErrNotFound
	}
	item.Value = bytes.Clone(item.Value)
	return item, nil
}

// List implements Store.
func (m *Memory) List(ctx context.Context, bucket, prefix string) ([]Item, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var items []Item
	for key, item := range m.buckets[bucket] {
		if strings.HasPrefix(key, prefix) {
			item.Value = bytes.Clone(item.Value)
			items = append(items, item)
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].Key < items[j].Key })
	return items, nil
}

// Commit implements Store.
func (m *Memory) Commit(ctx context.Context, ops ...Op) (int64, error) {
	if err := validate(ops); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, op := range ops {
		item, exists := m.buckets[op.Bucket][op.Key]
		if err := expectation(op, item.Revision, exists); err != nil {
			return 0, err
		}
	}
	m.revision++
	for _, op := range ops {
		bk := m.buckets[op.Bucket]
		if bk == nil {
			bk = map[string]Item{}
			m.buckets[op.Bucket] = bk
		}
		if op.Value == nil {
			delete(bk, op.Key)
			continue
		}
		bk[op.Key] = Item{Key: op.Key, Value: bytes.Clone(op.Value), Revision: m.revision}
	}
	return m.revision, nil
}

// Close implements Store.
func (m *Memory) Close() error { return nil }
