package client

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

// Client is the remote backend: berthd places, at plan time, and holds
// each placement with a lease; the apply's create names the lease and
// lands exactly on the host the plan showed.
type Client struct {
	t     *transport
	lease time.Duration
	reads *batcher[backend.ContainerRef, *backend.ContainerState]
	// leaseOps coalesces the lease takes and releases of concurrent plans
	// into berthd's batch route: one request, and one commit, for many.
	leaseOps *batcher[leaseOp, api.Lease]

	mu      sync.Mutex // guards leases, planned and failed; never held across I/O
	leases  map[string]heldLease
	planned map[string]bool // pools (and, by plannedVolume, volumes) planned by this process
	// failed is set once a create of this process did not fit: the plan
	// fails, so its leases only keep capacity from others.
	failed bool
}

// heldLease is a lease this process took, with the spec it was taken for.
type heldLease struct {
	lease api.Lease
	spec  backend.ContainerSpec
}

var _ backend.Backend = (*Client)(nil)

// New returns the remote backend for the provider block's remote settings.
func New(cfg Config) (*Client, error) {
	t, err := newTransport(cfg)
	if err != nil {
		return nil, err
	}
	lease := cfg.Lease
	if lease == 0 {
		lease = DefaultLease
	}
	c := &Client{t: t, lease: lease, leases: map[string]heldLease{}, planned: map[string]bool{}}
	c.reads = newBatcher(api.MaxReadBatch, c.readBatch)
	c.leaseOps = newBatcher(api.MaxLeaseBatch, c.leaseBatch)
	return c, nil
}

// PlanPool asks berthd to check the members; it remembers the pool, so
// that containers planned next in this process into a pool that does not
// exist yet are placed at apply instead of failing.
func (c *Client) PlanPool(ctx context.Context, spec backend.PoolSpec) (backend.PoolStatus, error) {
	var status backend.PoolStatus
	err := c.t.do(ctx, http.MethodPost, api.PoolPlanPath(spec.Name), newKey("plan-pool"), spec, &status)
	if err == nil {
		c.mu.Lock()
		c.planned[spec.Name] = true
		c.mu.Unlock()
	}
	return status, err
}

// ApplyPool creates or updates the pool in berthd, which writes its records.
func (c *Client) ApplyPool(ctx context.Context, spec backend.PoolSpec) (backend.PoolStatus, error) {
	var status backend.PoolStatus
	err := c.t.do(ctx, http.MethodPut, api.PoolPath(spec.Name), newKey("apply-pool"), spec, &status)
	return status, err
}

// ReadPool returns nil, nil when berthd has no such pool.
func (c *Client) ReadPool(ctx context.Context, name string) (*backend.PoolStatus, error) {
	var status backend.PoolStatus
	err := c.t.do(ctx, http.MethodGet, api.PoolPath(name), "", nil, &status)
	if isCode(err, api.CodePoolNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &status, nil
}

// DeletePool deletes the pool; berthd refuses while it has containers.
func (c *Client) DeletePool(ctx context.Context, name string) error {
	err := c.t.do(ctx, http.MethodDelete, api.PoolPath(name), newKey("delete-pool"), nil, nil)
	if isCode(err, api.CodePoolNotFound) {
		return nil
	}
	return err
}

// PoolUsage reports berthd's ledger of the pool.
func (c *Client) PoolUsage(ctx context.Context, name string) (backend.PoolUsage, error) {
	var usage backend.PoolUsage
	err := c.t.do(ctx, http.MethodGet, api.PoolUsagePath(name), "", nil, &usage)
	return usage, err
}

// PlanContainer takes (or renews) the create's lease: berthd places it now
// and the plan shows the host.
func (c *Client) PlanContainer(ctx context.Context, spec backend.ContainerSpec) (backend.PlanResult, error) {
	return c.takeLease(ctx, api.LeaseRequest{Spec: spec})
}

// PlanReplacement takes the lease of a replacement's create half next to
// the container it replaces.
func (c *Client) PlanReplacement(ctx context.Context, old backend.ContainerRef, spec backend.ContainerSpec) (backend.PlanResult, error) {
	return c.takeLease(ctx, api.LeaseRequest{Spec: spec, Replaces: &old})
}

func (c *Client) takeLease(ctx context.Context, req api.LeaseRequest) (backend.PlanResult, error) {
	req.TTL = c.lease
	lease, err := c.leaseOps.call(ctx, leaseOp{take: &req})
	if isCode(err, api.CodePoolNotFound) && c.plannedHere(req.Spec.Pool) {
		// The pool is created by this same apply, before its containers:
		// berthd places them at apply, and the plan shows no host.
		return backend.PlanResult{}, nil
	}
	if isCode(err, api.CodeVolumeNotFound) && c.mountsPlannedVolume(req.Spec) {
		// It mounts a volume created by this same apply: berthd places
		// it beside the volume at apply.
		return backend.PlanResult{}, nil
	}
	if isCode(err, api.CodeNoFit) {
		c.abandon(ctx)
	}
	if err != nil {
		return backend.PlanResult{}, err
	}
	c.mu.Lock()
	c.leases[leaseKey(req.Spec.Pool, req.Spec.Name)] = heldLease{lease: lease, spec: req.Spec}
	failed := c.failed
	c.mu.Unlock()
	if failed {
		c.abandon(ctx)
	}
	return backend.PlanResult{Host: lease.Host}, nil
}

// abandon gives back the leases this process holds once one of its
// creates did not fit. A plan with an error is never applied, and its
// leases would otherwise keep capacity from every other workspace until
// placement_lease runs out. In an apply, a create whose lease was given
// back is taken again on its planned host, or fails asking for a new plan.
func (c *Client) abandon(ctx context.Context) {
	c.mu.Lock()
	c.failed = true
	held := make([]backend.ContainerSpec, 0, len(c.leases))
	for _, h := range c.leases {
		held = append(held, h.spec)
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, spec := range held {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Best effort: a lease not given back still expires.
			_ = c.GiveBack(ctx, spec.Pool, spec.Name)
		}()
	}
	wg.Wait()
}

// GiveBack releases the lease this process took for pool/name, if it still
// holds one (a create that bound it took it over): its capacity is free
// for every workspace again at once. Concurrent releases share a request.
func (c *Client) GiveBack(ctx context.Context, pool, name string) error {
	key := leaseKey(pool, name)
	c.mu.Lock()
	held, ok := c.leases[key]
	delete(c.leases, key)
	c.mu.Unlock()
	if !ok {
		return nil
	}
	_, err := c.leaseOps.call(ctx, leaseOp{release: held.lease.ID})
	return err
}

// leaseOp is one take (or renewal) or one release in a lease batch.
type leaseOp struct {
	take    *api.LeaseRequest
	release string
}

// leaseBatch sends the takes and releases of concurrent plans in one request.
func (c *Client) leaseBatch(ctx context.Context, ops []leaseOp) ([]api.Lease, []error, error) {
	var req api.LeaseBatchRequest
	for _, op := range ops {
		if op.take != nil {
			req.Take = append(req.Take, *op.take)
		} else {
			req.Release = append(req.Release, op.release)
		}
	}
	var answer api.LeaseBatchResponse
	if err := c.t.do(ctx, http.MethodPost, api.PathLeaseBatch, newKey("leases"), req, &answer); err != nil {
		return nil, nil, err
	}
	if len(answer.Take) != len(req.Take) || len(answer.Release) != len(req.Release) {
		return nil, nil, errors.New("berthd answered a lease batch with the wrong number of results")
	}
	leases, errs := make([]api.Lease, len(ops)), make([]error, len(ops))
	takes, releases := answer.Take, answer.Release
	for i, op := range ops {
		var result api.LeaseResult
		if op.take != nil {
			result, takes = takes[0], takes[1:]
		} else {
			result, releases = releases[0], releases[1:]
		}
		switch {
		case result.Error != nil:
			errs[i] = &Error{Status: result.Status, Code: result.Error.Code, Message: result.Error.Message}
		case op.take != nil && result.Lease == nil:
			errs[i] = errors.New("berthd answered a lease take with neither a lease nor an error")
		case op.take != nil:
			leases[i] = *result.Lease
		}
	}
	return leases, errs, nil
}

// mountsPlannedVolume reports whether spec mounts a volume this process
// planned.
func (c *Client) mountsPlannedVolume(spec backend.ContainerSpec) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range spec.Options.Mounts {
		if m.Type == engine.MountVolume && c.planned[plannedVolume(spec.Pool, m.Source)] {
			return true
		}
	}
	return false
}

func (c *Client) plannedHere(pool string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.planned[pool]
}

// PlanResize asks berthd whether the container can grow in place.
func (c *Client) PlanResize(ctx context.Context, current backend.ContainerState, res backend.Resources) (bool, string, error) {
	var answer api.PlanResizeResponse
	err := c.t.do(ctx, http.MethodPost, api.PathContainerPlanRs, "", api.ResizeRequest{Current: current, Resources: res}, &answer)
	return answer.Fits, answer.Reason, err
}

// CreateContainer creates on the lease the plan took. Terraform re-plans
// every create in the apply process just before it, so the lease is held
// here. Its retries (a dropped connection, berthd restarting) share one
// Idempotency-Key, so they wait on or replay the same create; a create on
// the same lease from another process waits for a running one and then
// finds its container, since berthd binds a lease once.
func (c *Client) CreateContainer(ctx context.Context, spec backend.ContainerSpec) (backend.ContainerState, error) {
	req := api.CreateRequest{Spec: spec}
	key := newKey("create")
	if held, ok := c.heldFor(spec); ok {
		req = api.CreateRequest{Spec: held.spec, LeaseID: held.lease.ID, PlannedHost: held.lease.Host}
		req.Spec.RepoDigest = spec.RepoDigest // resolved at apply, after the plan took the lease
		// One key per process: a rerun after a failed create must run it
		// again, not replay the failure (the lease may still be held).
		key = newKey("create-" + held.lease.ID)
	} else if spec.Host != "" {
		// No lease in this process (the plan showed a host it did not
		// take here): berthd creates on that host or nowhere.
		req.PlannedHost = spec.Host
	}
	var created backend.ContainerState
	err := c.t.do(ctx, http.MethodPost, api.PathContainers, key, req, &created)
	return created, err
}

// heldFor finds, and hands over to the create, the lease taken for spec
// by this process's re-plan. The
// plan's host is in spec now; the lease was taken with spec's host as
// configured, so everything else must match.
func (c *Client) heldFor(spec backend.ContainerSpec) (heldLease, bool) {
	key := leaseKey(spec.Pool, spec.Name)
	c.mu.Lock()
	defer c.mu.Unlock()
	held, ok := c.leases[key]
	if !ok || spec.Host != held.lease.Host {
		return heldLease{}, false
	}
	asTaken := spec
	asTaken.Host = held.spec.Host
	if api.Fingerprint(asTaken) != api.Fingerprint(held.spec) {
		return heldLease{}, false
	}
	delete(c.leases, key) // the create binds it: no longer this process's to give back
	return held, true
}

// ReadContainer observes a container; concurrent reads share one request.
func (c *Client) ReadContainer(ctx context.Context, ref backend.ContainerRef) (*backend.ContainerState, error) {
	return c.reads.call(ctx, ref)
}

func (c *Client) readBatch(ctx context.Context, refs []backend.ContainerRef) ([]*backend.ContainerState, []error, error) {
	var answer api.ReadResponse
	if err := c.t.do(ctx, http.MethodPost, api.PathContainerRead, "", api.ReadRequest{Refs: refs}, &answer); err != nil {
		return nil, nil, err
	}
	if len(answer.Containers) != len(refs) || (answer.Errors != nil && len(answer.Errors) != len(refs)) {
		return nil, nil, errors.New("berthd answered a batched read with the wrong number of containers")
	}
	errs := make([]error, len(refs))
	for i, e := range answer.Errors {
		if e != nil {
			errs[i] = &Error{Status: http.StatusOK, Code: e.Code, Message: e.Message}
		}
	}
	return answer.Containers, errs, nil
}

// ResizeContainer changes CPU and memory in place.
func (c *Client) ResizeContainer(ctx context.Context, current backend.ContainerState, res backend.Resources) (backend.ContainerState, error) {
	var out backend.ContainerState
	err := c.t.do(ctx, http.MethodPost, api.PathContainerResize, newKey("resize"), api.ResizeRequest{Current: current, Resources: res}, &out)
	return out, err
}

// ReconfigureContainer changes limits and the restart policy in place.
func (c *Client) ReconfigureContainer(ctx context.Context, current backend.ContainerState, limits backend.Resources, restart string) (backend.ContainerState, error) {
	var out backend.ContainerState
	err := c.t.do(ctx, http.MethodPost, api.PathContainerReconf, newKey("reconfigure"), api.ReconfigureRequest{Current: current, Limits: limits, Restart: restart}, &out)
	return out, err
}

// StartContainer starts a stopped container.
func (c *Client) StartContainer(ctx context.Context, current backend.ContainerState, waitHealthy bool) (backend.ContainerState, error) {
	var out backend.ContainerState
	err := c.t.do(ctx, http.MethodPost, api.PathContainerStart, newKey("start"), api.StartRequest{Current: current, WaitHealthy: waitHealthy}, &out)
	return out, err
}

// StopContainer stops a container and keeps it, with its capacity.
func (c *Client) StopContainer(ctx context.Context, current backend.ContainerState, stopTimeout time.Duration) (backend.ContainerState, error) {
	var out backend.ContainerState
	err := c.t.do(ctx, http.MethodPost, api.PathContainerStop, newKey("stop"), api.StopRequest{Current: current, StopTimeout: stopTimeout}, &out)
	return out, err
}

// DeleteContainer stops and removes a container; one already gone is deleted.
func (c *Client) DeleteContainer(ctx context.Context, ref backend.ContainerRef, stopTimeout time.Duration) error {
	err := c.t.do(ctx, http.MethodPost, api.PathContainerDelete, newKey("delete"), api.DeleteRequest{Ref: ref, StopTimeout: stopTimeout}, nil)
	if isCode(err, api.CodeContainerNotFound) {
		return nil
	}
	return err
}

// FindContainer looks a container up by pool and name (import).
func (c *Client) FindContainer(ctx context.Context, pool, name string) (*backend.ContainerState, error) {
	var found backend.ContainerState
	err := c.t.do(ctx, http.MethodGet, api.FindPath(pool, name), "", nil, &found)
	if isCode(err, api.CodeContainerNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &found, nil
}

// releaseTimeout bounds giving back an abandoned plan's leases.
const releaseTimeout = 30 * time.Second

func leaseKey(pool, name string) string { return pool + "/" + name }

// isCode reports whether err is berthd's answer with that code.
func isCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}
