package backend

import (
	"context"
	"sync"
)

// onceMap runs one load per key and shares its result with concurrent and
// later callers. A failed load is forgotten, so the next caller retries.
type onceMap[V any] struct {
	mu    sync.Mutex
	calls map[string]*onceCall[V]
}

type onceCall[V any] struct {
	ready chan struct{}
	val   V
	err   error
}

func newOnceMap[V any]() *onceMap[V] {
	return &onceMap[V]{calls: map[string]*onceCall[V]{}}
}

// do returns the key's value, calling load when there is none yet.
func (m *onceMap[V]) do(ctx context.Context, key string, load func() (V, error)) (V, error) {
	m.mu.Lock()
	call, ok := m.calls[key]
	if !ok {
		call = &onceCall[V]{ready: make(chan struct{})}
		m.calls[key] = call
		m.mu.Unlock()
		call.val, call.err = load()
		if call.err != nil {
			m.forgetCall(key, call)
		}
		close(call.ready)
	} else {
		m.mu.Unlock()
	}
	select {
	case <-call.ready:
		return call.val, call.err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}

// loaded returns the key's value when a load has already succeeded.
func (m *onceMap[V]) loaded(key string) (V, bool) {
	m.mu.Lock()
	call, ok := m.calls[key]
	m.mu.Unlock()
	var zero V
	if !ok {
		return zero, false
	}
	<-call.ready
	if call.err != nil {
		return zero, false
	}
	return call.val, true
}

// forget drops the key, so the next do loads afresh.
func (m *onceMap[V]) forget(key string) {
	m.forgetCall(key, nil)
}

func (m *onceMap[V]) forgetCall(key string, only *onceCall[V]) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if only == nil || m.calls[key] == only {
		delete(m.calls, key)
	}
}
