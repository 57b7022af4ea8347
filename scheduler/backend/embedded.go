package backend

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/scheduler"
)

// Embedded runs the scheduler core inside the provider process. One
// provider process is one Terraform phase (plan or apply): its parallel
// creates are made safe by the core's per-host reservations, and creates of
// other processes by verifying against the engine after each create.
type Embedded struct {
	engines *engine.Set
	reads   *snapshots
	images  *imageCache
	// registries: credentials for images whose spec carries none.
	registries Registries

	pools *onceMap[*poolState]

	mu      sync.Mutex // guards planned and destroyed; never held across I/O
	planned map[string]PoolStatus
	// destroyed: containers planned for destruction before their pool was
	// loaded, by pool; loading gives their room back (PlanDestroy).
	destroyed map[string][]ContainerRef
	// deleting counts this process's deletes in flight, by pool: a create
	// re-planned while the container it replaces is being deleted waits.
	deleting map[string]*sync.WaitGroup

	// servedAs is berthd's URL when this backend is berthd's core; "" in a
	// provider process. See ServeAs.
	servedAs string
}

// poolState is one pool's scheduler, loaded once per process from the pool
// record and the containers observed on its engines.
type poolState struct {
	sched *scheduler.Scheduler

	// Containers of other processes restored during verification, by
	// reservation id. They may yield and vanish in turn, so they are
	// checked again before a create gives up.
	foreignMu sync.Mutex
	foreign   map[string]foreignContainer

	names *nameClaims
	own   *inspectCache
	// seen: other processes' containers as inspected by a verification
	// (exact creation time, limits), so each is inspected once.
	seen  *inspectCache
	views *hostViews // the hosts this process creates on, watched

	// Leftovers of interrupted creates that a plan stopped counting, by
	// container key: the create of that key removes them first.
	leftovers sync.Map // key -> scheduler.Reservation
}

type foreignContainer struct {
	host, containerID string
}

var _ Backend = (*Embedded)(nil)

// NewEmbedded returns the embedded backend over the provider block's engines.
func NewEmbedded(engines *engine.Set) *Embedded {
	return &Embedded{
		engines:   engines,
		reads:     newSnapshots(engines),
		images:    newImageCache(),
		pools:     newOnceMap[*poolState](),
		planned:   map[string]PoolStatus{},
		destroyed: map[string][]ContainerRef{},
		deleting:  map[string]*sync.WaitGroup{},
	}
}

// ServeAs makes this backend berthd's, reachable at url. Pools it applies
// say so in their records, and the two modes never place into the same
// pool: a provider process in embedded mode refuses berthd's pools, and
// berthd refuses pools it has not applied. Call it before any other method.
func (b *Embedded) ServeAs(url string) *Embedded {
	b.servedAs = url
	return b
}

// checkMode refuses a pool managed by the other mode.
func (b *Embedded) checkMode(status PoolStatus) error {
	switch {
	case status.Scheduler != "" && b.servedAs == "":
		return fmt.Errorf("pool %q is registered with berthd at %s, which alone places into it, so that the two modes never race on one pool: "+
			"in the provider block, replace engines with scheduler_url = %q", status.Spec.Name, status.Scheduler, status.Scheduler)
	case status.Scheduler == "" && b.servedAs != "":
		return fmt.Errorf("pool %q is managed in embedded mode (its records name no berthd): apply its berth_pool through berthd (scheduler_url = %q) first, "+
			"once no embedded-mode apply is running on it", status.Spec.Name, b.servedAs)
	}
	return nil
}

// pool returns the loaded pool, loading it on first use.
func (b *Embedded) pool(ctx context.Context, name string) (*poolState, error) {
	return b.pools.do(ctx, name, func() (*poolState, error) {
		return b.loadPool(ctx, name)
	})
}

// loadPool resolves the pool's spec (planned in this process, else the
// newest record on the engines) and rebuilds its ledger from the engines.
func (b *Embedded) loadPool(ctx context.Context, name string) (*poolState, error) {
	status, err := b.poolStatus(ctx, name)
	if err != nil {
		return nil, err
	}
	sched := scheduler.New(scheduler.Config{Strategy: scheduler.Strategy(status.Spec.Strategy)})
	sched.SetHosts(schedulerHosts(status))
	b.rebuild(ctx, name, status, sched)
	b.mu.Lock()
	destroyed := b.destroyed[name]
	delete(b.destroyed, name)
	b.mu.Unlock()
	for _, old := range destroyed {
		releaseIn(sched, old)
	}
	return &poolState{sched: sched, foreign: map[string]foreignContainer{}, names: newNameClaims(), own: newInspectCache(), seen: newInspectCache(), views: newHostViews()}, nil
}

// poolStatus is the pool as planned in this process, else as recorded.
func (b *Embedded) poolStatus(ctx context.Context, name string) (PoolStatus, error) {
	b.mu.Lock()
	status, planned := b.planned[name]
	b.mu.Unlock()
	if !planned {
		found, err := b.ReadPool(ctx, name)
		if err != nil {
			return PoolStatus{}, err
		}
		if found == nil {
			return PoolStatus{}, withKind(ErrPoolNotFound, "pool %q not found on any engine of the provider block (%s): create it with a berth_pool resource, and reference it as berth_pool.NAME.id so it is created first",
				name, strings.Join(b.engines.Names(), ", "))
		}
		status = *found
	}
	return status, b.checkMode(status)
}

// rebuild loads every container of the pool, as observed on its engines,
// into the ledger as a bound reservation. A host that does not answer is
// marked unhealthy, so placement avoids it and explanations say why.
func (b *Embedded) rebuild(ctx context.Context, pool string, status PoolStatus, sched *scheduler.Scheduler) {
	var wg sync.WaitGroup
	for host := range status.Spec.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if status.Spec.Hosts[host].Lost {
				sched.SetUnhealthy(host, "lost (written off in the pool)")
				return
			}
			observed, err := b.observe(ctx, host, pool)
			if err != nil {
				sched.SetUnhealthy(host, err.Error())
				return
			}
			for _, c := range observed {
				_, _ = restore(sched, host, c)
			}
			if err := b.restoreVolumes(ctx, sched, host, pool); err != nil {
				sched.SetUnhealthy(host, err.Error())
			}
		}()
	}
	wg.Wait()
}

// observe lists a host's containers of one pool with what they reserve.
// Labels record what was reserved at create; an in-place resize changes
// the limits and leaves a marker (resizes.go), the newest of which wins.
// One container list and one marker list per host, whatever the number of
// containers: a container is not inspected (a resize made by a Berth older
// than the markers is counted at its created size until it is replaced).
func (b *Embedded) observe(ctx context.Context, host, pool string) ([]engine.Container, error) {
	eng, err := b.engines.Get(host)
	if err != nil {
		return nil, err
	}
	listed, markers, err := listWithResizes(ctx, eng, pool)
	if err != nil {
		return nil, err
	}
	applyResizes(listed, markers)
	return listed, nil
}

// list returns a host's engine and its containers of one pool (labels only).
func (b *Embedded) list(ctx context.Context, host, pool string) (*engine.Engine, []engine.Container, error) {
	eng, err := b.engines.Get(host)
	if err != nil {
		return nil, nil, err
	}
	listed, err := eng.ListContainers(ctx, pool)
	return eng, listed, err
}

// inspectAll inspects containers with bounded concurrency; containers that
// vanished in between are dropped.
func inspectAll(ctx context.Context, eng *engine.Engine, listed []engine.Container) ([]engine.Container, error) {
	const workers = 8
	out := make([]*engine.Container, len(listed))
	errs := make([]error, len(listed))
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for i, c := range listed {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i], errs[i] = eng.InspectContainer(ctx, c.ID)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if engine.IsMalformed(err) {
			errs[i] = nil // skipped, and the engine remembers it for a warning
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	containers := make([]engine.Container, 0, len(out))
	for _, c := range out {
		if c != nil {
			containers = append(containers, *c)
		}
	}
	return containers, nil
}

// restore puts an observed container into the ledger as Bound.
func restore(sched *scheduler.Scheduler, host string, c engine.Container) (scheduler.Reservation, error) {
	ports := make([]scheduler.PortBinding, len(c.Ports))
	for i, p := range c.Ports {
		ports[i] = scheduler.PortBinding{Internal: p.Internal, External: p.External, Protocol: p.Protocol}
	}
	// Restore accepts what the engine has even when it overcommits: reality
	// wins, and such a host simply fits nothing new.
	return sched.Restore(scheduler.Reservation{
		ID:          c.ReservationID,
		Key:         ledgerKey(c),
		Name:        c.Name,
		Host:        host,
		Resources:   scheduler.Resources{MilliCPU: c.MilliCPU, MemoryBytes: c.MemoryBytes},
		Ports:       ports,
		SpreadGroup: c.SpreadGroup,
		State:       scheduler.Bound,
		ContainerID: c.ID,
		DeviceIDs:   c.GPUIDs,
	})
}

// schedulerHosts turns a pool's spec and discovered capacity into hosts.
func schedulerHosts(status PoolStatus) []scheduler.Host {
	names := make([]string, 0, len(status.Spec.Hosts))
	for name := range status.Spec.Hosts {
		names = append(names, name)
	}
	sort.Strings(names)
	hosts := make([]scheduler.Host, 0, len(names))
	for _, name := range names {
		spec := status.Spec.Hosts[name]
		capacity := effectiveCapacity(spec, status.Discovered[name])
		hosts = append(hosts, scheduler.Host{
			Name:          name,
			Labels:        spec.Labels,
			Capacity:      scheduler.Resources{MilliCPU: capacity.MilliCPU, MemoryBytes: capacity.MemoryBytes},
			MaxContainers: spec.MaxContainers,
			Ports:         scheduler.PortRange{Min: spec.PortMin, Max: spec.PortMax},
			Healthy:       true,
			Cordoned:      spec.Cordoned || spec.Lost,
			DiskBytes:     spec.DiskBytes,
			Devices:       spec.GPUs,
			DeviceIDs:     gpuIDs(spec),
		})
	}
	return hosts
}

// gpuIDs are the host's GPUs by id: as declared, or their indexes ("0",
// "1", …) when only a count is, so that every container is given specific
// GPUs the way `docker run --gpus '"device=0,1"'` names them.
func gpuIDs(spec PoolHostSpec) []string {
	if len(spec.GPUIDs) > 0 || spec.GPUs == 0 {
		return spec.GPUIDs
	}
	ids := make([]string, spec.GPUs)
	for i := range ids {
		ids[i] = strconv.Itoa(i)
	}
	return ids
}

// effectiveCapacity is the configured capacity, or what the engine has.
func effectiveCapacity(spec PoolHostSpec, info engine.Info) Resources {
	capacity := Resources{MilliCPU: spec.MilliCPU, MemoryBytes: spec.MemoryBytes}
	if capacity.MilliCPU == 0 {
		capacity.MilliCPU = int64(info.NCPU) * 1000
	}
	if capacity.MemoryBytes == 0 {
		capacity.MemoryBytes = info.MemTotal
	}
	return capacity
}

// containerKey is a container's idempotency key: its name within its pool.
func containerKey(pool, name string) string {
	return pool + "/" + name
}
