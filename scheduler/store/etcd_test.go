package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
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

// A fenced view writes while its leader key is the one it was made for,
// and fails with ErrFenced, writing nothing, once that key is gone or
// recreated, even though its own guards hold.
func TestEtcdFencedCommit(t *testing.T) {
	s := openEtcd(t)
	ctx := context.Background()
	leaderRev, err := s.Commit(ctx, Op{Bucket: "election", Key: "leader", Value: []byte("me"), Expect: Absent})
	if err != nil {
		t.Fatal(err)
	}
	fenced := s.Fenced(s.key("election", "leader"), leaderRev)
	if _, err := fenced.Commit(ctx, Op{Bucket: "b", Key: "k", Value: []byte("1"), Expect: Absent}); err != nil {
		t.Fatalf("commit while leader: %v", err)
	}
	if _, err := fenced.Commit(ctx, Op{Bucket: "b", Key: "k", Value: []byte("2"), Expect: Absent}); !errors.Is(err, ErrConflict) {
		t.Fatalf("guard failing under a valid fence: %v, want ErrConflict", err)
	}
	// Another leader takes over: the key is deleted and created again.
	if _, err := s.Commit(ctx, Op{Bucket: "election", Key: "leader"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, Op{Bucket: "election", Key: "leader", Value: []byte("other"), Expect: Absent}); err != nil {
		t.Fatal(err)
	}
	_, err = fenced.Commit(ctx, Op{Bucket: "b", Key: "k2", Value: []byte("stale")})
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
