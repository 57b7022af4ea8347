package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// EtcdConfig says how to reach etcd. Zero durations pick the defaults.
type EtcdConfig struct {
	Endpoints []string
	// Prefix is prepended to every key, so that several berthd clusters
	// (or other users) can share one etcd. Default "/berth/".
	Prefix string
	TLS    *tls.Config // nil: plain gRPC

	DialTimeout    time.Duration // default 5s
	RequestTimeout time.Duration // bound on one Get, List or Commit; default 5s
}

// EtcdTLS builds the TLS configuration for etcd from PEM files: a CA to
// verify the members, and optionally a client certificate and key. It
// returns nil when no file is given.
func EtcdTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	if caFile == "" && certFile == "" && keyFile == "" {
		return nil, nil
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("store: an etcd client certificate needs both its certificate and its key file")
	}
	info := transport.TLSInfo{TrustedCAFile: caFile, CertFile: certFile, KeyFile: keyFile}
	cfg, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("store: etcd TLS: %w", err)
	}
	return cfg, nil
}

// Etcd is the replicated store. Every commit is written by an etcd
// transaction (with the other commits of its batch) whose guards compare
// mod revisions (Expect n) or create revisions (Absent);
// Item.Revision is the key's etcd mod revision, so revisions are
// store-wide and increasing like Bolt's.
//
// A view made by Fenced adds one more guard to every commit: a key that
// only the current leader holds must still be the one it created. A
// deposed leader's writes then fail with ErrFenced, whatever it believes.
type Etcd struct {
	client  *clientv3.Client
	prefix  string
	timeout time.Duration
	owner   bool // Close closes the client
	batches *etcdBatcher

	fenceKey string
	fenceRev int64
}

var _ Store = (*Etcd)(nil)

// OpenEtcd connects to etcd and checks, within the dial timeout, that it
// answers, so that a wrong endpoint fails at start with its address.
func OpenEtcd(cfg EtcdConfig) (*Etcd, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("store: etcd needs at least one endpoint")
	}
	dial := orDefault(cfg.DialTimeout, 5*time.Second)
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: dial,
		TLS:         cfg.TLS,
		// Its retries are logged at warn, many a second while etcd has no
		// quorum; the errors that reach berthd say what matters.
		Logger: zap.NewNop(),
		// Notice a dead member within seconds and move to another.
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		PermitWithoutStream:  true,
	})
	if err != nil {
		return nil, fmt.Errorf("store: etcd at %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = "/berth/"
	}
	e := &Etcd{client: client, prefix: prefix, timeout: orDefault(cfg.RequestTimeout, 5*time.Second), owner: true, batches: &etcdBatcher{}}
	ctx, cancel := context.WithTimeout(context.Background(), dial)
	defer cancel()
	if _, err := client.Get(clientv3.WithRequireLeader(ctx), prefix+"\x00probe", clientv3.WithCountOnly()); err != nil {
		_ = client.Close()
		if cfg.TLS != nil {
			if tlsErr := handshake(cfg.Endpoints, cfg.TLS, dial); tlsErr != nil {
				return nil, fmt.Errorf("store: %w", tlsErr)
			}
		}
		return nil, fmt.Errorf("%w: etcd at %s does not answer within %s: %w", ErrUnavailable, strings.Join(cfg.Endpoints, ","), dial, err)
	}
	return e, nil
}

// handshake explains a failed first request over TLS: gRPC reports only
// its deadline, so a certificate etcd's members do not accept, or one of
// theirs this client does not trust, is found by a TLS handshake of our
// own with each endpoint. It returns the first handshake that fails.
func handshake(endpoints []string, cfg *tls.Config, timeout time.Duration) error {
	for _, endpoint := range endpoints {
		u, err := url.Parse(endpoint)
		if err != nil || u.Host == "" {
			continue
		}
		dialer := &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: cfg}
		conn, err := dialer.Dial("tcp", u.Host)
		if err != nil {
			var opErr *net.OpError
			if errors.As(err, &opErr) && opErr.Op == "dial" {
				continue // no connection at all: not a TLS problem
			}
			return fmt.Errorf("TLS handshake with etcd at %s failed: %w", endpoint, err)
		}
		_ = conn.Close()
	}
	return nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// ObserveBatches tells hook how many commits each transaction of this
// view carried.
func (e *Etcd) ObserveBatches(hook func(requests int)) { e.batches.observe.Store(&hook) }

// Prefix is what every key of this store starts with.
func (e *Etcd) Prefix() string { return e.prefix }

// Client is the etcd client, for leader election over the same connection.
func (e *Etcd) Client() *clientv3.Client { return e.client }

// Fenced returns a view of the store whose commits also require that key
// still exists at createRevision (a leader key of an election). The view
// shares the connection; closing it closes nothing.
func (e *Etcd) Fenced(key string, createRevision int64) *Etcd {
	view := *e
	view.owner = false
	view.batches = &etcdBatcher{} // its commits carry its own fence
	view.fenceKey, view.fenceRev = key, createRevision
	return &view
}

func (e *Etcd) key(bucket, key string) string { return e.prefix + bucket + "/" + key }

// call bounds one request and makes it fail fast when the member it talks
// to has no leader (quorum lost) instead of waiting for one.
func (e *Etcd) call(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	return clientv3.WithRequireLeader(ctx), cancel
}

// Get implements Store.
func (e *Etcd) Get(ctx context.Context, bucket, key string) (Item, error) {
	if err := checkBucket(bucket); err != nil {
		return Item{}, err
	}
	cctx, cancel := e.call(ctx)
	defer cancel()
	resp, err := e.client.Get(cctx, e.key(bucket, key))
	if err != nil {
		return Item{}, e.unavailable(ctx, err)
	}
	if len(resp.Kvs) == 0 {
		return Item{}, ErrNotFound
	}
	kv := resp.Kvs[0]
	return Item{Key: key, Value: kv.Value, Revision: kv.ModRevision}, nil
}

// List implements Store.
func (e *Etcd) List(ctx context.Context, bucket, prefix string) ([]Item, error) {
	if err := checkBucket(bucket); err != nil {
		return nil, err
	}
	cctx, cancel := e.call(ctx)
	defer cancel()
	base := e.key(bucket, "")
	resp, err := e.client.Get(cctx, base+prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, e.unavailable(ctx, err)
	}
	items := make([]Item, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		items[i] = Item{Key: strings.TrimPrefix(string(kv.Key), base), Value: kv.Value, Revision: kv.ModRevision}
	}
	return items, nil
}

// Commit implements Store. Concurrent commits are grouped into one etcd
// transaction (see etcd_batch.go); each answers once its transaction has
// been agreed by a quorum.
func (e *Etcd) Commit(ctx context.Context, ops ...Op) (int64, error) {
	if err := validate(ops); err != nil {
		return 0, err
	}
	req, err := e.prepare(ops)
	if err != nil {
		return 0, err
	}
	e.batches.add(req, e.flush)
	select {
	case res := <-req.done:
		return res.revision, res.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// prepare turns ops into their etcd guards and writes, and the reads that
// tell, when a guard fails, which one did.
func (e *Etcd) prepare(ops []Op) (*etcdRequest, error) {
	req := &etcdRequest{done: make(chan commitResult, 1)}
	last := map[string]int{} // etcd refuses two writes of one key in a transaction: the later wins, as in Bolt
	for _, op := range ops {
		if err := checkBucket(op.Bucket); err != nil {
			return nil, err
		}
		k := e.key(op.Bucket, op.Key)
		switch {
		case op.Expect == Absent:
			req.guards = append(req.guards, clientv3.Compare(clientv3.CreateRevision(k), "=", 0))
			req.guarded = append(req.guarded, op)
		case op.Expect > 0:
			req.guards = append(req.guards, clientv3.Compare(clientv3.ModRevision(k), "=", op.Expect))
			req.guarded = append(req.guarded, op)
		}
		write := clientv3.OpPut(k, string(op.Value))
		if op.Value == nil {
			write = clientv3.OpDelete(k)
		}
		req.size += len(k) + len(op.Value)
		if i, ok := last[k]; ok {
			req.writes[i] = write
			continue
		}
		last[k] = len(req.writes)
		req.keys = append(req.keys, k)
		req.writes = append(req.writes, write)
	}
	for _, op := range req.guarded {
		req.reads = append(req.reads, clientv3.OpGet(e.key(op.Bucket, op.Key), clientv3.WithKeysOnly()))
	}
	return req, nil
}

// commitBatch writes a batch in one transaction:
//
//	if fence { if every guard { every write } else { read the guarded keys } }
//
// so that a lost fence and a lost guard are told apart in one round trip.
// When a guard fails, the keys read back say whose: those requests fail
// with ErrConflict, alone, and the others go back to the queue's front.
func (e *Etcd) commitBatch(batch []*etcdRequest) {
	var guards []clientv3.Cmp
	var writes, reads []clientv3.Op
	for _, req := range batch {
		guards = append(guards, req.guards...)
		writes = append(writes, req.writes...)
		reads = append(reads, req.reads...)
	}
	ctx, cancel := e.call(context.Background())
	defer cancel()
	var resp *clientv3.TxnResponse
	var err error
	if e.fenceKey == "" {
		resp, err = e.client.Txn(ctx).If(guards...).Then(writes...).Else(reads...).Commit()
	} else {
		fence := clientv3.Compare(clientv3.CreateRevision(e.fenceKey), "=", e.fenceRev)
		resp, err = e.client.Txn(ctx).If(fence).Then(clientv3.OpTxn(guards, writes, reads)).Commit()
	}
	e.observe(len(batch))
	switch {
	case err != nil:
		answerAll(batch, commitResult{err: e.unavailable(context.Background(), err)})
		return
	case e.fenceKey != "" && !resp.Succeeded:
		answerAll(batch, commitResult{err: fmt.Errorf("%w (leader key %s is gone or was recreated)", ErrFenced, e.fenceKey)})
		return
	}
	succeeded, responses := resp.Succeeded, resp.Responses
	if e.fenceKey != "" {
		inner := resp.Responses[0].GetResponseTxn()
		succeeded, responses = inner.Succeeded, inner.Responses
	}
	if succeeded {
		answerAll(batch, commitResult{revision: resp.Header.Revision})
		return
	}
	if len(batch) == 1 {
		batch[0].done <- commitResult{err: conflictOf(batch[0].guarded, responses)}
		return
	}
	var retry []*etcdRequest
	for _, req := range batch {
		mine := responses[:len(req.reads)]
		responses = responses[len(req.reads):]
		if err := failedGuard(req.guarded, mine); err != nil {
			req.done <- commitResult{err: err}
			continue
		}
		retry = append(retry, req)
	}
	if len(retry) == len(batch) {
		// No guard fails when read back: a key moved and moved back in
		// between. Let each request find out in a transaction of its own.
		for _, req := range retry {
			req.alone = true
		}
	}
	e.batches.requeue(retry)
}

func answerAll(batch []*etcdRequest, res commitResult) {
	for _, req := range batch {
		req.done <- res
	}
}

// conflictOf names the first guard that failed, from the keys read back.
func conflictOf(guarded []Op, reads []*etcdserverpb.ResponseOp) error {
	if err := failedGuard(guarded, reads); err != nil {
		return err
	}
	// Every guard holds when read back: a key moved and moved back between
	// the compare and the read (a create then delete). Still a conflict.
	return fmt.Errorf("%w: a guarded key changed during the commit", ErrConflict)
}

// failedGuard is the first of guarded whose guard the keys read back fail, or nil.
func failedGuard(guarded []Op, reads []*etcdserverpb.ResponseOp) error {
	for i, op := range guarded {
		rev, exists := int64(0), false
		if r := reads[i].GetResponseRange(); r != nil && len(r.Kvs) > 0 {
			rev, exists = r.Kvs[0].ModRevision, true
		}
		if err := expectation(op, rev, exists); err != nil {
			return err
		}
	}
	return nil
}

// Close implements Store. Commits are synchronous: none is pending once
// its caller has its answer.
func (e *Etcd) Close() error {
	if !e.owner {
		return nil
	}
	return e.client.Close()
}

// checkBucket keeps bucket names apart from their keys in etcd's flat key
// space: "a" + "b/c" must not be "a/b" + "c".
func checkBucket(bucket string) error {
	if strings.Contains(bucket, "/") {
		return fmt.Errorf("store: bucket name %q contains a slash", bucket)
	}
	return nil
}

// unavailable turns etcd's ways of saying "no quorum" or "cannot reach
// any member" into ErrUnavailable, so that berthd answers 503 with a clear
// message; ctx's own end stays what it is.
func (e *Etcd) unavailable(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: etcd has no quorum or no member answers (no answer within %s)", ErrUnavailable, e.timeout)
	}
	var etcdErr rpctypes.EtcdError
	switch {
	case errors.Is(err, rpctypes.ErrNoLeader),
		errors.Is(err, rpctypes.ErrTimeout),
		errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail),
		errors.Is(err, rpctypes.ErrTimeoutDueToConnectionLost),
		errors.Is(err, rpctypes.ErrLeaderChanged),
		status.Code(err) == codes.Unavailable,
		status.Code(err) == codes.DeadlineExceeded,
		errors.As(err, &etcdErr) && etcdErr.Code() == codes.Unavailable:
		return fmt.Errorf("%w: etcd has no quorum or no member answers (%w)", ErrUnavailable, err)
	}
	return fmt.Errorf("store: etcd: %w", err)
}
