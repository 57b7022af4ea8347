package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stores runs a test against every implementation.
func stores(t *testing.T, test func(t *testing.T, s Store)) {
	t.Run("bolt", func(t *testing.T) {
		s, err := OpenBolt(t.TempDir(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		test(t, s)
	})
	t.Run("memory", func(t *testing.T) { test(t, NewMemory()) })
	t.Run("etcd", func(t *testing.T) { test(t, openEtcd(t)) })
}

func TestCommitGetList(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		if _, err := s.Get(ctx, "leases", "a"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get on an empty store: %v, want ErrNotFound", err)
		}
		rev1, err := s.Commit(ctx, Op{Bucket: "leases", Key: "p/a", Value: []byte("1"), Expect: Absent}, Op{Bucket: "idem", Key: "k", Value: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		rev2, err := s.Commit(ctx, Op{Bucket: "leases", Key: "p/b", Value: []byte("2")}, Op{Bucket: "leases", Key: "q/c", Value: []byte("3")})
		if err != nil {
			t.Fatal(err)
		}
		if rev2 <= rev1 {
			t.Errorf("revisions %d then %d: want increasing", rev1, rev2)
		}
		item, err := s.Get(ctx, "leases", "p/a")
		if err != nil || string(item.Value) != "1" || item.Revision != rev1 {
			t.Errorf("Get p/a = %+v, %v; want value 1 at revision %d", item, err, rev1)
		}
		items, err := s.List(ctx, "leases", "p/")
		if err != nil || len(items) != 2 || items[0].Key != "p/a" || items[1].Key != "p/b" || string(items[1].Value) != "2" {
			t.Errorf("List p/ = %+v, %v; want p/a, p/b", items, err)
		}
		if _, err := s.Commit(ctx, Op{Bucket: "leases", Key: "p/a", Value: nil}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "leases", "p/a"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get after delete: %v, want ErrNotFound", err)
		}
	})
}

func TestExpectGuardsWholeCommit(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		rev, err := s.Commit(ctx, Op{Bucket: "b", Key: "k", Value: []byte("v1")})
		if err != nil {
			t.Fatal(err)
		}
		cases := []Op{
			{Bucket: "b", Key: "k", Value: []byte("x"), Expect: Absent},  // exists
			{Bucket: "b", Key: "k", Value: []byte("x"), Expect: rev + 7}, // other revision
			{Bucket: "b", Key: "gone", Value: []byte("x"), Expect: 1},    // missing
		}
		for _, guard := range cases {
			_, err := s.Commit(ctx, Op{Bucket: "b", Key: "side", Value: []byte("effect")}, guard)
			if !errors.Is(err, ErrConflict) {
				t.Errorf("commit guarded by %+v: %v, want ErrConflict", guard, err)
			}
			if _, err := s.Get(ctx, "b", "side"); !errors.Is(err, ErrNotFound) {
				t.Errorf("a failed guard wrote the other op of its commit (%v)", err)
			}
		}
		if _, err := s.Commit(ctx, Op{Bucket: "b", Key: "k", Value: []byte("v2"), Expect: rev}); err != nil {
			t.Errorf("commit at the current revision: %v", err)
		}
	})
}

// Two writes of one key in a commit: the later wins, in every store (etcd
// itself refuses duplicate keys in a transaction).
func TestSameKeyTwiceInACommit(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		if _, err := s.Commit(ctx, Op{Bucket: "b", Key: "k", Value: []byte("1"), Expect: Absent}, Op{Bucket: "b", Key: "k", Value: []byte("2")}); err != nil {
			t.Fatal(err)
		}
		if item, err := s.Get(ctx, "b", "k"); err != nil || string(item.Value) != "2" {
			t.Errorf("Get = %+v, %v; want the later write, 2", item, err)
		}
		if _, err := s.Commit(ctx, Op{Bucket: "b", Key: "k", Value: []byte("3")}, Op{Bucket: "b", Key: "k"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "b", "k"); !errors.Is(err, ErrNotFound) {
			t.Errorf("write then delete in one commit: %v, want ErrNotFound", err)
		}
	})
}

func TestInvalidOps(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		for _, ops := range [][]Op{nil, {{Key: "k"}}, {{Bucket: "b"}}, {{Bucket: "b", Key: "k", Expect: -5}}} {
			if _, err := s.Commit(ctx, ops...); err == nil || errors.Is(err, ErrConflict) {
				t.Errorf("Commit(%+v) = %v, want a validation error", ops, err)
			}
		}
	})
}

// Many writers race to create one key: exactly one wins, in every batch
// arrangement the writer happens to make.
func TestConcurrentCreateOneWinner(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		for round := range 5 {
			var wins atomic.Int32
			var wg sync.WaitGroup
			for i := range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := s.Commit(ctx,
						Op{Bucket: "b", Key: fmt.Sprintf("k%d", round), Value: []byte{byte(i)}, Expect: Absent},
						Op{Bucket: "c", Key: fmt.Sprintf("k%d-%d", round, i), Value: []byte("x")})
					switch {
					case err == nil:
						wins.Add(1)
					case !errors.Is(err, ErrConflict):
						t.Errorf("commit: %v", err)
					}
				}()
			}
			wg.Wait()
			if wins.Load() != 1 {
				t.Errorf("round %d: %d writers created the key, want 1", round, wins.Load())
			}
			items, err := s.List(ctx, "c", fmt.Sprintf("k%d-", round))
			if err != nil || len(items) != 1 {
				t.Errorf("round %d: %d side writes committed (%v), want only the winner's", round, len(items), err)
			}
		}
	})
}

func TestBoltReopenAndLock(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenBolt(dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := s.Commit(context.Background(), Op{Bucket: "b", Key: "k", Value: []byte("v")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenBolt(dir, 100*time.Millisecond); err == nil {
		t.Error("a second open of a held store succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(context.Background(), Op{Bucket: "b", Key: "k2", Value: []byte("v")}); !errors.Is(err, ErrClosed) {
		t.Errorf("commit after Close: %v, want ErrClosed", err)
	}
	s, err = OpenBolt(dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	item, err := s.Get(context.Background(), "b", "k")
	if err != nil || string(item.Value) != "v" || item.Revision != rev {
		t.Errorf("after reopen: %+v, %v", item, err)
	}
	next, err := s.Commit(context.Background(), Op{Bucket: "b", Key: "k3", Value: []byte("v")})
	if err != nil || next <= rev {
		t.Errorf("revision after reopen = %d (%v), want > %d", next, err, rev)
	}
}
