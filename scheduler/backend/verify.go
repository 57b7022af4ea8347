package backend

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/scheduler"
)

// verify makes embedded mode safe across processes. The container is
// created but not started; the host's containers of the pool, as they are
// just after this create (views.go), are replayed in engine creation
// order. If the host cannot hold everything created before ours plus ours,
// ours is the later one and yields: the caller removes it and places
// again. Every process applies the same rule to the same engine order, so
// exactly the later containers yield. The final check (after the start)
// also makes names unique across processes.
//
// Containers this process did not create are inspected once (exact
// nanosecond creation time, real limits); those that make ours yield are
// restored into the ledger, so the next placement sees them.
func (b *Embedded) verify(ctx context.Context, ps *poolState, eng *engine.Engine, id string, spec ContainerSpec, final bool) (bool, error) {
	// Three looks, each only needing to come after mine's create (or
	// start): at once. They ask one engine, so the first error says it.
	var listed []engine.Container
	var markers []engine.ResizeMarker
	var mine *engine.Container
	err := cmp.Or(concurrently(
		func() (err error) { listed, err = b.hostContainers(ctx, ps, eng, spec.Pool, id, final); return err },
		func() (err error) { markers, err = eng.ListResizeMarkers(ctx, spec.Pool, ""); return err },
		func() (err error) { mine, err = ps.own.inspect(ctx, eng, id); return err },
	)...)
	if err != nil {
		return false, err
	}
	if mine == nil {
		if final { // a started container is nobody's leftover
			return false, fmt.Errorf("the container of %s.%s was removed from %s as it started, by hand or by another program", spec.Pool, spec.Name, eng.Name())
		}
		return false, vanished(spec, eng.Name(), "right after its create")
	}
	if final {
		// The final check alone decides (it sees all the first would).
		if err := b.nameTaken(ctx, ps, eng.Name(), *mine, spec); err != nil {
			return false, err
		}
	}
	others, inspected, err := b.othersOn(ctx, ps, eng, listed, *mine, markers, final)
	if err != nil {
		return false, err
	}
	fits := fitsInOrder(hostOf(ps, eng.Name()), *mine, others, spec.MaxPerHost, final)
	if !fits {
		for _, c := range inspected {
			ps.restoreForeign(eng.Name(), c)
		}
	}
	return fits, nil
}

// othersOn returns the host's listed containers other than mine with what
// each reserves, and those of them other processes made (restored into
// the ledger when they make mine yield).
// Exact times are needed only where the list's whole seconds cannot order
// a container against mine (a container known from its create event has no
// time yet); unknown containers are inspected anyway, once per process.
//
// What a container reserves is its newest resize marker (resizes.go) when
// it has one, else what it was created with. Before the final check only
// markers made up to mine count (a marker of mine's second counts: a tie
// costs an extra yield, never an overcommit); at the final check every
// visible marker counts. A resize found in a marker is also recorded in the
// ledger when the ledger holds that container, however it was found here
// (a container of mine's second is inspected even when the ledger has it),
// so that the next placement counts it.
func (b *Embedded) othersOn(ctx context.Context, ps *poolState, eng *engine.Engine, listed []engine.Container, mine engine.Container, markers []engine.ResizeMarker, final bool) (others, inspected []engine.Container, err error) {
	var toInspect, cached []engine.Container
	for _, c := range listed {
		if c.ID == mine.ID {
			continue
		}
		if own, ok := ps.own.get(c.ID); ok {
			others = append(others, own)
			continue
		}
		if seen, ok := ps.seen.get(c.ID); ok {
			seen.State, seen.Running = c.State, c.Running
			cached = append(cached, seen)
			continue
		}
		res, inLedger := ps.sched.Lookup(ledgerKey(c))
		sameSecond := c.Created.IsZero() || c.Created.Unix() == mine.Created.Unix()
		if !inLedger || res.ContainerID != c.ID || sameSecond {
			toInspect = append(toInspect, c)
			continue
		}
		c.MilliCPU, c.MemoryBytes = res.Resources.MilliCPU, res.Resources.MemoryBytes
		others = append(others, c)
	}
	inspected, err = inspectAll(ctx, eng, toInspect)
	if err != nil {
		return nil, nil, err
	}
	for _, c := range inspected {
		ps.seen.put(c)
	}
	known := len(others)
	others = append(append(others, cached...), inspected...)
	until := mine.Created
	if final {
		until = time.Time{}
	}
	resized := newestResizes(markers, until)
	for i := range others {
		m, ok := resized[others[i].ID]
		if !ok {
			continue
		}
		others[i].MilliCPU, others[i].MemoryBytes = m.MilliCPU, m.MemoryBytes
		ps.learnResize(others[i])
	}
	// A copy: the caller's check sorts others in place.
	return others, slices.Clone(others[known:]), nil
}

// hostContainers returns the host's containers of the pool as they are
// just after container id's create (its start, for the final check): from
// the host's view when it has the container's event in time, else listed.
func (b *Embedded) hostContainers(ctx context.Context, ps *poolState, eng *engine.Engine, pool, id string, final bool) ([]engine.Container, error) {
	action := "create"
	if final {
		action = "start"
	}
	if v := ps.views.get(eng.Name()); v != nil {
		if containers, ok := v.after(ctx, eng, pool, id, action); ok {
			return containers, nil
		}
	}
	return eng.ListContainers(ctx, pool)
}

// inspectCache remembers containers as inspected once: exact creation
// time, limits as created. For this process's own creates (poolState.own,
// filled by their first verification), verifying a create then inspects
// none of its siblings, and inspecting one that is starting would wait for
// its start: the engine locks a container while it starts (about 90 ms per
// inspect on average, measured with 10 creates at once).
type inspectCache struct {
	mu   sync.Mutex
	byID map[string]engine.Container
}

func newInspectCache() *inspectCache {
	return &inspectCache{byID: map[string]engine.Container{}}
}

func (o *inspectCache) get(id string) (engine.Container, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	c, ok := o.byID[id]
	return c, ok
}

func (o *inspectCache) put(c engine.Container) {
	o.mu.Lock()
	o.byID[c.ID] = c
	o.mu.Unlock()
}

// inspect returns the container, inspecting it once; nil when it does not
// exist.
func (o *inspectCache) inspect(ctx context.Context, eng *engine.Engine, id string) (*engine.Container, error) {
	if c, ok := o.get(id); ok {
		return &c, nil
	}
	c, err := eng.InspectContainer(ctx, id)
	if err != nil || c == nil {
		return nil, err
	}
	o.put(*c)
	return c, nil
}

// restoreForeign puts another process's container into the ledger and
// remembers it, since it may yield and disappear in turn.
func (ps *poolState) restoreForeign(host string, c engine.Container) {
	res, err := restore(ps.sched, host, c)
	if err != nil || res.ContainerID != c.ID {
		return // unknown host, or the key is one of our own creates
	}
	ps.foreignMu.Lock()
	ps.foreign[res.ID] = foreignContainer{host: host, containerID: c.ID}
	ps.foreignMu.Unlock()
}

// forgetVanished releases restored foreign containers that are gone from
// their engines. It reports whether any capacity came back.
func (b *Embedded) forgetVanished(ctx context.Context, ps *poolState, pool string) bool {
	ps.foreignMu.Lock()
	byHost := map[string]map[string]string{} // host -> container id -> reservation id
	for id, f := range ps.foreign {
		if byHost[f.host] == nil {
			byHost[f.host] = map[string]string{}
		}
		byHost[f.host][f.containerID] = id
	}
	ps.foreignMu.Unlock()

	freed := false
	for host, byContainer := range byHost {
		_, listed, err := b.list(ctx, host, pool)
		if err != nil {
			continue
		}
		for _, c := range listed {
			delete(byContainer, c.ID)
		}
		for _, id := range byContainer {
			_ = ps.sched.Release(id)
			ps.foreignMu.Lock()
			delete(ps.foreign, id)
			ps.foreignMu.Unlock()
			freed = true
		}
	}
	return freed
}

// fitsInOrder replays the containers created before mine and checks that
// mine still fits on every dimension the scheduler reserves.
//
// At the final check (after mine started), later containers that are
// running count too: a later container runs only after its own first
// verification let it stay, so if it overflows the host with mine, it did
// not see mine (Docker lists a container only some time after stamping its
// Created). Then mine gives way as well: both may yield, never both stay,
// whatever order the creates finish in. Later containers not running yet
// will see mine at their own verification, and this process's own (known
// from their first inspect, not running then) are safe by its ledger.
func fitsInOrder(host scheduler.Host, mine engine.Container, others []engine.Container, maxPerHost int, final bool) bool {
	return overflowInOrder(host, mine, others, maxPerHost, final) == ""
}

// overflowInOrder is fitsInOrder's reason: "" when mine fits, else what the
// host would hold with it.
func overflowInOrder(host scheduler.Host, mine engine.Container, others []engine.Container, maxPerHost int, final bool) string {
	sort.Slice(others, func(i, j int) bool {
		if !others[i].Created.Equal(others[j].Created) {
			return others[i].Created.Before(others[j].Created)
		}
		return others[i].ID < others[j].ID
	})
	var used scheduler.Resources
	count, groupCount := 0, 0
	ports := map[string]bool{}
	for _, c := range others {
		later := c.Created.After(mine.Created) || (c.Created.Equal(mine.Created) && c.ID > mine.ID)
		if later && (!final || !c.Running) {
			continue
		}
		used.MilliCPU += c.MilliCPU
		used.MemoryBytes += c.MemoryBytes
		count++
		if mine.SpreadGroup != "" && c.SpreadGroup == mine.SpreadGroup {
			groupCount++
		}
		for _, p := range c.Ports {
			ports[portKey(p)] = true
		}
	}
	total := scheduler.Resources{MilliCPU: used.MilliCPU + mine.MilliCPU, MemoryBytes: used.MemoryBytes + mine.MemoryBytes}
	switch {
	case total.MilliCPU > host.Capacity.MilliCPU || total.MemoryBytes > host.Capacity.MemoryBytes:
		return fmt.Sprintf("%s would hold %s of its %s", host.Name, total, host.Capacity)
	case host.MaxContainers > 0 && count+1 > host.MaxContainers:
		return fmt.Sprintf("%s would hold %d containers, more than its max_containers = %d", host.Name, count+1, host.MaxContainers)
	case maxPerHost > 0 && mine.SpreadGroup != "" && groupCount+1 > maxPerHost:
		return fmt.Sprintf("%s would hold %d of spread group %s, more than max_per_host = %d", host.Name, groupCount+1, mine.SpreadGroup, maxPerHost)
	}
	for _, p := range mine.Ports {
		if ports[portKey(p)] {
			return fmt.Sprintf("port %s on %s is taken", portKey(p), host.Name)
		}
	}
	return ""
}

func portKey(p engine.PortBinding) string {
	proto := p.Protocol
	if proto == "" {
		proto = "tcp"
	}
	return fmt.Sprintf("%d/%s", p.External, proto)
}

// hostOf returns the scheduler's view of one host of the pool.
func hostOf(ps *poolState, name string) scheduler.Host {
	if h, ok := ps.sched.Host(name); ok {
		return h
	}
	return scheduler.Host{Name: name}
}

func (ps *poolState) hasForeign() bool {
	ps.foreignMu.Lock()
	defer ps.foreignMu.Unlock()
	return len(ps.foreign) > 0
}

// nameTaken makes names unique within a pool across processes: two creates
// of one pool/name on different hosts both list the pool's hosts for the
// name, and the later container (by creation time, then id, as fitsInOrder
// orders them) gives way. It returns the error the later one fails with.
func (b *Embedded) nameTaken(ctx context.Context, ps *poolState, host string, mine engine.Container, spec ContainerSpec) error {
	// Hosts already known not to answer are not asked, and one that stops
	// answering now is passed over: a dead host must not fail creates on
	// the others (nor be blamed on them). A create there cannot finish
	// either, and its container is found by name when the host returns.
	var hosts []string
	for _, h := range ps.sched.Usage() {
		if h.Host.Name != host && h.Host.Healthy {
			hosts = append(hosts, h.Host.Name)
		}
	}
	var mu sync.Mutex
	var earlier []string
	err := forEachHost(hosts, func(other string) error {
		eng, err := b.engines.Get(other)
		if engine.IsUnreachable(err) {
			return nil
		}
		if err != nil {
			return err
		}
		named, err := eng.ListNamed(ctx, spec.Pool, spec.Name)
		if engine.IsUnreachable(err) {
			return nil
		}
		if err != nil || len(named) == 0 {
			return err
		}
		inspected, err := inspectAll(ctx, eng, named) // exact creation times
		if engine.IsUnreachable(err) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, c := range inspected {
			if c.Retired {
				continue // replaced: its name is its replacement's
			}
			if c.Created.Before(mine.Created) || (c.Created.Equal(mine.Created) && c.ID < mine.ID) {
				mu.Lock()
				earlier = append(earlier, fmt.Sprintf("on %s, container %s", other, shortID(c.ID)))
				mu.Unlock()
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(earlier) == 0 {
		return nil
	}
	sort.Strings(earlier)
	return fmt.Errorf("%w: name taken: pool %s already has a container named %s (%s), created by another process just before this one; names are unique within a pool",
		ErrDuplicateName, spec.Pool, spec.Name, strings.Join(earlier, "; "))
}
