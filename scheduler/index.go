package scheduler

import (
	"hash/maphash"
	"sync"
)

// recordIndex maps strings (ids, keys) to records. It is sharded so that
// concurrent placements rarely meet on a lock, and each lock guards only
// a map operation: nothing slow ever runs under it.
type recordIndex struct {
	seed   maphash.Seed
	shards [indexShards]indexShard
}

const indexShards = 64

type indexShard struct {
	mu sync.Mutex
	m  map[string]*record
	_  [48]byte // keep shards on separate cache lines
}

func newRecordIndex() *recordIndex {
	x := &recordIndex{seed: maphash.MakeSeed()}
	for i := range x.shards {
		x.shards[i].m = map[string]*record{}
	}
	return x
}

func (x *recordIndex) shard(k string) *indexShard {
	return &x.shards[maphash.String(x.seed, k)%indexShards]
}

func (x *recordIndex) load(k string) *record {
	sh := x.shard(k)
	sh.mu.Lock()
	r := sh.m[k]
	sh.mu.Unlock()
	return r
}

// store puts r under k unless k is taken, and reports whether it did.
func (x *recordIndex) store(k string, r *record) bool {
	sh := x.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, taken := sh.m[k]; taken {
		return false
	}
	sh.m[k] = r
	return true
}

// compareAndDelete removes k only while it still maps to r.
func (x *recordIndex) compareAndDelete(k string, r *record) {
	sh := x.shard(k)
	sh.mu.Lock()
	if sh.m[k] == r {
		delete(sh.m, k)
	}
	sh.mu.Unlock()
}

// all returns every record, one shard at a time.
func (x *recordIndex) all() []*record {
	var out []*record
	for i := range x.shards {
		sh := &x.shards[i]
		sh.mu.Lock()
		for _, r := range sh.m {
			out = append(out, r)
		}
		sh.mu.Unlock()
	}
	return out
}
