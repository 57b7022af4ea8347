package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/etcdtest"
)

// One real three-member etcd cluster serves every test of the package;
// each test keeps to a prefix of its own.
var sharedEtcd struct {
	once    sync.Once
	dir     string
	cluster *etcdtest.Cluster
	err     error
}

func etcdCluster(t *testing.T) *etcdtest.Cluster {
	t.Helper()
	sharedEtcd.once.Do(func() {
		// Not t.TempDir: the cluster outlives the first test; TestMain removes it.
		sharedEtcd.dir, sharedEtcd.err = os.MkdirTemp("", "berth-store-etcd-") //nolint:usetesting // see above
		if sharedEtcd.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // a first build of etcd included
		defer cancel()
		sharedEtcd.cluster, sharedEtcd.err = etcdtest.Start(ctx, etcdtest.Options{Dir: sharedEtcd.dir})
	})
	if sharedEtcd.err != nil {
		t.Fatalf("starting a 3-member etcd cluster: %v", sharedEtcd.err)
	}
	return sharedEtcd.cluster
}

// stopSharedEtcd runs after the package's tests.
func stopSharedEtcd() {
	if sharedEtcd.cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = sharedEtcd.cluster.Stop(ctx)
	}
	if sharedEtcd.dir != "" {
		_ = os.RemoveAll(sharedEtcd.dir)
	}
}

// openEtcd opens a store on the shared cluster under a prefix of t's own.
func openEtcd(t *testing.T) *Etcd {
	t.Helper()
	c := etcdCluster(t)
	s, err := OpenEtcd(EtcdConfig{Endpoints: c.Endpoints(), Prefix: "/" + filepath.ToSlash(t.Name()) + "/"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// openFenced opens a store and a view of it fenced by a leader key.
func openFenced(t *testing.T) (s, fenced *Etcd) {
	t.Helper()
	s = openEtcd(t)
	leaderRev, err := s.Commit(context.Background(), Op{Bucket: "election", Key: "leader", Value: []byte("me"), Expect: Absent})
	if err != nil {
		t.Fatal(err)
	}
	return s, s.Fenced(s.key("election", "leader"), leaderRev)
}

// takeOver is another leader taking over: the leader key of openFenced is
// deleted and created again.
func takeOver(t *testing.T, s *Etcd) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Commit(ctx, Op{Bucket: "election", Key: "leader"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, Op{Bucket: "election", Key: "leader", Value: []byte("other"), Expect: Absent}); err != nil {
		t.Fatal(err)
	}
}

// A fenced view writes while its leader key is the one it was made for,
// and fails with ErrFenced, writing nothing, once that key is gone or
// recreated, even though its own guards hold.
func TestEtcdFencedCommit(t *testing.T) {
	s, fenced := openFenced(t)
	ctx := context.Background()
	if _, err := fenced.Commit(ctx, Op{Bucket: "b", Key: "k", Value: []byte("1"), Expect: Absent}); err != nil {
		t.Fatalf("commit while leader: %v", err)
	}
	if _, err := fenced.Commit(ctx, Op{Bucket: "b", Key: "k", Value: []byte("2"), Expect: Absent}); !errors.Is(err, ErrConflict) {
		t.Fatalf("guard failing under a valid fence: %v, want ErrConflict", err)
	}
	takeOver(t, s)
	_, err := fenced.Commit(ctx, Op{Bucket: "b", Key: "k2", Value: []byte("stale")})
	if !errors.Is(err, ErrFenced) || errors.Is(err, ErrConflict) {
		t.Fatalf("commit by the deposed leader: %v, want ErrFenced", err)
	}
	if _, err := s.Get(ctx, "b", "k2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the deposed leader's write landed (%v)", err)
	}
	if err := fenced.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "b", "k"); err != nil {
		t.Errorf("closing a fenced view closed the store: %v", err)
	}
}

// With one of three members down, commits go on; with two down, they fail
// within the request timeout with ErrUnavailable (not a conflict, not a
// hang); once a member is back, they go on again. (The refused commit may
// land then: a proposal the lone member took is committed with the
// quorum, which is why ErrUnavailable leaves a commit's outcome unknown.)
func TestEtcdQuorumLoss(t *testing.T) {
	c := etcdCluster(t)
	s, err := OpenEtcd(EtcdConfig{Endpoints: c.Endpoints(), Prefix: "/" + t.Name() + "/", RequestTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	defer func() {
		for i := range c.Members {
			if c.Members[i].PID == 0 {
				if err := c.StartMember(ctx, i, true); err != nil {
					t.Errorf("restarting member %d: %v", i, err)
				}
			}
		}
	}()
	commit := func(key string) error {
		_, err := s.Commit(ctx, Op{Bucket: "b", Key: key, Value: []byte("v"), Expect: Absent})
		return err
	}
	if err := c.StopMember(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := commit("one-down"); err != nil {
		t.Fatalf("commit with one member of three down: %v", err)
	}
	if err := c.StopMember(ctx, 1); err != nil {
		t.Fatal(err)
	}
	err = commit("two-down")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("commit with two members of three down: %v, want ErrUnavailable", err)
	}
	t.Logf("two members down: %v", err)
	if _, err := s.Get(ctx, "b", "one-down"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("read with two members down: %v, want ErrUnavailable", err)
	}
	if err := c.StartMember(ctx, 1, true); err != nil {
		t.Fatal(err)
	}
	if err := commit("back"); err != nil {
		t.Errorf("commit once a quorum is back: %v", err)
	}
}

// Concurrent commits share transactions, and a commit whose guard fails
// fails alone: the others of its batch land. Two commits creating the
// same key have one winner. Once the fence is lost, every commit of a
// batch fails with ErrFenced and none lands.
func TestEtcdBatchedCommits(t *testing.T) {
	s, fenced := openFenced(t)
	ctx := context.Background()
	var mu sync.Mutex
	var batches []int
	fenced.ObserveBatches(func(n int) {
		mu.Lock()
		batches = append(batches, n)
		mu.Unlock()
	})
	for i := range 10 {
		if _, err := s.Commit(ctx, Op{Bucket: "b", Key: fmt.Sprintf("taken-%d", i), Value: []byte("old")}); err != nil {
			t.Fatal(err)
		}
	}

	const n = 90
	errs := make([]error, n)
	revs := make([]int64, n)
	concurrently(n, func(i int) {
		side := Op{Bucket: "b", Key: fmt.Sprintf("side-%d", i), Value: []byte("v")}
		var guarded Op
		switch i % 3 {
		case 0: // fails: the key exists
			guarded = Op{Bucket: "b", Key: fmt.Sprintf("taken-%d", i%10), Value: []byte("new"), Expect: Absent}
		case 1: // succeeds
			guarded = Op{Bucket: "b", Key: fmt.Sprintf("new-%d", i), Value: []byte("v"), Expect: Absent}
		case 2: // one of these wins
			guarded = Op{Bucket: "b", Key: "shared", Value: []byte(strconv.Itoa(i)), Expect: Absent}
		}
		revs[i], errs[i] = fenced.Commit(ctx, side, guarded)
	})
	perRevision := map[int64]int{}
	sharedWinners := 0
	for i, err := range errs {
		_, sideErr := s.Get(ctx, "b", fmt.Sprintf("side-%d", i))
		switch {
		case i%3 == 0 && !errors.Is(err, ErrConflict):
			t.Errorf("commit %d, guarded by an existing key: %v, want ErrConflict", i, err)
		case i%3 == 0 && !errors.Is(sideErr, ErrNotFound):
			t.Errorf("commit %d failed its guard but its other write landed (%v)", i, sideErr)
		case i%3 == 1 && err != nil:
			t.Errorf("commit %d, whose guard holds: %v (a batch mate's failed guard must not fail it)", i, err)
		case i%3 == 2 && err == nil:
			sharedWinners++
		case i%3 == 2 && !errors.Is(err, ErrConflict):
			t.Errorf("commit %d creating the shared key: %v, want success or ErrConflict", i, err)
		}
		if err == nil {
			perRevision[revs[i]]++
			if sideErr != nil {
				t.Errorf("commit %d succeeded but its write is not there: %v", i, sideErr)
			}
		}
	}
	if sharedWinners != 1 {
		t.Errorf("%d commits created the shared key, want exactly 1", sharedWinners)
	}
	mu.Lock()
	largest, transactions := 0, len(batches)
	for _, b := range batches {
		largest = max(largest, b)
	}
	mu.Unlock()
	shared := 0
	for _, k := range perRevision {
		shared = max(shared, k)
	}
	t.Logf("%d commits in %d transactions (largest %d); up to %d successful commits share one revision", n, transactions, largest, shared)
	if largest < 2 || shared < 2 {
		t.Errorf("%d concurrent commits were never grouped (largest transaction %d commits, %d per revision)", n, largest, shared)
	}

	takeOver(t, s)
	concurrently(20, func(i int) {
		key := fmt.Sprintf("stale-%d", i)
		if _, err := fenced.Commit(ctx, Op{Bucket: "b", Key: key, Value: []byte("v")}); !errors.Is(err, ErrFenced) {
			t.Errorf("commit %d by the deposed leader: %v, want ErrFenced", i, err)
		}
		if _, err := s.Get(ctx, "b", key); !errors.Is(err, ErrNotFound) {
			t.Errorf("the deposed leader's write %s landed (%v)", key, err)
		}
	})
}

// concurrently runs f(0..n-1) in goroutines released together.
func concurrently(n int, f func(i int)) {
	release := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-release
			f(i)
		}()
	}
	close(release)
	wg.Wait()
}
