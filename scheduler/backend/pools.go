package backend

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/scheduler"
)

// PlanPool checks the members answer and remembers the planned spec for
// containers planned next in this process.
func (b *Embedded) PlanPool(ctx context.Context, spec PoolSpec) (PoolStatus, error) {
	status, err := b.CheckPool(ctx, spec)
	if err != nil {
		return PoolStatus{}, err
	}
	b.mu.Lock()
	b.planned[spec.Name] = status
	b.mu.Unlock()
	b.refreshLoaded(status)
	return status, nil
}

// ApplyPool writes the pool's record onto each member and removes it from
// engines that are no longer members, refusing while they hold containers.
func (b *Embedded) ApplyPool(ctx context.Context, spec PoolSpec) (PoolStatus, error) {
	discovered, err := b.discover(ctx, spec)
	if err != nil {
		return PoolStatus{}, err
	}
	previous, err := b.ReadPool(ctx, spec.Name)
	if err != nil {
		return PoolStatus{}, err
	}
	var removed []string
	if previous != nil && previous.Scheduler != "" && b.servedAs == "" {
		return PoolStatus{}, b.checkMode(*previous)
	}
	// Records go to the members that answered; a spared member that did
	// not keeps what it last reported, and a removed host that was lost
	// is never asked again.
	answered := keys(discovered)
	if previous != nil {
		for host, was := range previous.Spec.Hosts {
			_, kept := spec.Hosts[host]
			if !kept && !was.Lost {
				removed = append(removed, host)
			}
			if _, ok := discovered[host]; kept && !ok {
				discovered[host] = previous.Discovered[host]
			}
		}
	}
	if err := b.refuseIfInUse(ctx, spec.Name, removed, "remove host(s) "+strings.Join(sorted(removed), ", ")+" from"); err != nil {
		return PoolStatus{}, err
	}

	record := poolRecord(spec, discovered, time.Now().UnixNano())
	record.Scheduler = b.servedAs
	err = forEachHost(answered, func(host string) error {
		eng, err := b.engines.Get(host)
		if err != nil {
			return err
		}
		return eng.WritePoolRecord(ctx, record)
	})
	if err != nil {
		return PoolStatus{}, err
	}
	err = forEachHost(removed, func(host string) error {
		eng, err := b.engines.Get(host)
		if err != nil {
			return err
		}
		return eng.DeletePoolRecord(ctx, spec.Name)
	})
	if err != nil {
		return PoolStatus{}, err
	}
	status := PoolStatus{Spec: spec, Discovered: discovered, Scheduler: b.servedAs}
	b.refreshLoaded(status)
	return status, nil
}

// ReadPool resolves a pool from the records on the provider block's
// engines: the newest revision wins. Engines that do not answer are passed
// over unless none does. A member missing the record, or holding an older
// one, is left out of the result so the plan shows it and apply rewrites it.
func (b *Embedded) ReadPool(ctx context.Context, name string) (*PoolStatus, error) {
	names := b.engines.Names()
	records := make(map[string]*engine.PoolRecord, len(names))
	var mu sync.Mutex
	readErr := forEachHost(names, func(host string) error {
		eng, err := b.engines.Get(host)
		if err != nil {
			return err
		}
		rec, err := eng.ReadPoolRecord(ctx, name)
		if err != nil {
			return err
		}
		mu.Lock()
		records[host] = rec
		mu.Unlock()
		return nil
	})
	answered := map[string]bool{}
	for _, host := range names {
		if _, ok := records[host]; ok {
			answered[host] = true
		}
	}

	var newest *engine.PoolRecord
	for _, rec := range records {
		if rec != nil && (newest == nil || rec.Revision > newest.Revision) {
			newest = rec
		}
	}
	if len(answered) == 0 && len(names) > 0 {
		return nil, fmt.Errorf("reading pool %q: %w", name, readErr)
	}
	if newest == nil {
		return nil, nil
	}
	status := statusFromRecord(*newest)
	for _, host := range names {
		if _, member := status.Spec.Hosts[host]; !member || !answered[host] {
			continue
		}
		if records[host] == nil || records[host].Revision != newest.Revision {
			delete(status.Spec.Hosts, host)
			delete(status.Discovered, host)
		}
	}
	return &status, nil
}

// DeletePool removes the pool's records, refusing while it has containers.
func (b *Embedded) DeletePool(ctx context.Context, name string) error {
	current, err := b.ReadPool(ctx, name)
	if err != nil {
		return err
	}
	if current == nil {
		return nil
	}
	if err := b.checkMode(*current); err != nil {
		return err
	}
	// Lost members are never asked again.
	if err := b.refuseIfInUse(ctx, name, current.Spec.notLost(keys(current.Spec.Hosts)), "delete"); err != nil {
		return err
	}
	err = forEachHost(current.Spec.notLost(b.engines.Names()), func(host string) error {
		eng, err := b.engines.Get(host)
		if err != nil {
			return err
		}
		// Markers of resized containers whose deletes could not remove them.
		markers, err := eng.ListResizeMarkers(ctx, name, "")
		if err == nil {
			err = removeMarkers(ctx, eng, markers)
		}
		return errors.Join(err, eng.DeletePoolRecord(ctx, name))
	})
	b.pools.forget(name)
	b.mu.Lock()
	delete(b.planned, name)
	b.mu.Unlock()
	return err
}

// PoolUsage reports capacity and usage per host from a fresh look at the
// engines, so it reflects other processes too.
func (b *Embedded) PoolUsage(ctx context.Context, name string) (PoolUsage, error) {
	status, err := b.ReadPool(ctx, name)
	if err != nil {
		return PoolUsage{}, err
	}
	if status == nil {
		return PoolUsage{}, withKind(ErrPoolNotFound, "pool %q not found on any engine of the provider block (%s)", name, strings.Join(b.engines.Names(), ", "))
	}
	sched := scheduler.New(scheduler.Config{Strategy: scheduler.Strategy(status.Spec.Strategy)})
	sched.SetHosts(schedulerHosts(*status))
	b.rebuild(ctx, name, *status, sched)
	usage := PoolUsage{Name: name, Strategy: status.Spec.Strategy}
	for _, h := range sched.Usage() {
		usage.Hosts = append(usage.Hosts, HostUsage{
			Name:          h.Host.Name,
			Labels:        h.Host.Labels,
			Capacity:      Resources(h.Host.Capacity),
			Reserved:      Resources(h.Reserved),
			Free:          Resources(h.Free),
			Containers:    h.Containers,
			MaxContainers: h.Host.MaxContainers,
			Healthy:       h.Host.Healthy,
			Volumes:       h.Volumes,
			DiskBytes:     h.Host.DiskBytes,
			DiskReserved:  h.DiskBytes,
			DiskFree:      max(0, h.Host.DiskBytes-h.DiskBytes),
			GPUs:          h.Host.Devices,
			GPUsReserved:  h.Devices,
			GPUsFree:      max(0, h.Host.Devices-h.Devices),
			GPUIDs:        h.Host.DeviceIDs,
			GPUIDsHeld:    h.DeviceIDs,
		})
	}
	return usage, nil
}

// discover asks every member engine what it has. Errors name host and
// endpoint, all of them at once. Lost hosts are not asked, and a cordoned
// host that does not answer is left out rather than failing the pool.
func (b *Embedded) discover(ctx context.Context, spec PoolSpec) (map[string]engine.Info, error) {
	var mu sync.Mutex
	discovered := make(map[string]engine.Info, len(spec.Hosts))
	err := forEachHost(keys(spec.Hosts), func(host string) error {
		if spec.Hosts[host].Lost {
			return nil
		}
		eng, err := b.engines.Get(host)
		if err != nil {
			return fmt.Errorf("pool %q host %q: %w", spec.Name, host, err)
		}
		info, err := eng.Info(ctx)
		if err != nil && spec.Hosts[host].spared() {
			return nil
		}
		if err != nil {
			return err
		}
		mu.Lock()
		discovered[host] = info
		mu.Unlock()
		return nil
	})
	return discovered, err
}

// lostHost reports whether the pool's record marks host as lost: its
// containers are then forgotten rather than failing every read and delete.
func (b *Embedded) lostHost(ctx context.Context, pool, host string) bool {
	status, err := b.ReadPool(ctx, pool)
	return err == nil && status != nil && status.Spec.Hosts[host].Lost
}

// refuseIfInUse fails, listing them, when the hosts hold containers or
// volumes of the pool: removing the pool would orphan them, data included.
func (b *Embedded) refuseIfInUse(ctx context.Context, pool string, hosts []string, action string) error {
	var mu sync.Mutex
	var inUse []string
	err := forEachHost(hosts, func(host string) error {
		_, listed, err := b.list(ctx, host, pool)
		if err != nil {
			return fmt.Errorf("cannot check %s for containers of pool %q: %w", host, pool, err)
		}
		eng, err := b.engines.Get(host)
		if err != nil {
			return err
		}
		volumes, err := eng.ListVolumes(ctx, pool)
		if err != nil {
			return fmt.Errorf("cannot check %s for volumes of pool %q: %w", host, pool, err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, c := range listed {
			inUse = append(inUse, fmt.Sprintf("%s (on %s)", c.Name, host))
		}
		for _, v := range volumes {
			inUse = append(inUse, fmt.Sprintf("volume %s (on %s)", v.Name, host))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(inUse) > 0 {
		sort.Strings(inUse)
		return withKind(ErrPoolInUse, "cannot %s pool %q: it still has %d container(s) or volume(s): %s; destroy or move them first",
			action, pool, len(inUse), strings.Join(inUse, ", "))
	}
	return nil
}

// refreshLoaded applies a new spec to an already loaded pool.
func (b *Embedded) refreshLoaded(status PoolStatus) {
	if ps, ok := b.pools.loaded(status.Spec.Name); ok {
		ps.sched.SetHosts(schedulerHosts(status))
	}
}

func poolRecord(spec PoolSpec, discovered map[string]engine.Info, revision int64) engine.PoolRecord {
	rec := engine.PoolRecord{Name: spec.Name, Strategy: spec.Strategy, Revision: revision, Hosts: map[string]engine.PoolRecordHost{}}
	for name, h := range spec.Hosts {
		rec.Hosts[name] = engine.PoolRecordHost{
			Labels:        h.Labels,
			MilliCPU:      h.MilliCPU,
			MemoryBytes:   h.MemoryBytes,
			MaxContainers: h.MaxContainers,
			PortMin:       h.PortMin,
			PortMax:       h.PortMax,
			Cordoned:      h.Cordoned,
			Lost:          h.Lost,
			DiskBytes:     h.DiskBytes,
			GPUs:          h.GPUs,
			GPUIDs:        h.GPUIDs,
			Discovered:    discovered[name],
		}
	}
	return rec
}

func statusFromRecord(rec engine.PoolRecord) PoolStatus {
	status := PoolStatus{
		Spec:       PoolSpec{Name: rec.Name, Strategy: rec.Strategy, Hosts: map[string]PoolHostSpec{}},
		Discovered: map[string]engine.Info{},
		Scheduler:  rec.Scheduler,
	}
	for name, h := range rec.Hosts {
		status.Spec.Hosts[name] = PoolHostSpec{
			Labels:        h.Labels,
			MilliCPU:      h.MilliCPU,
			MemoryBytes:   h.MemoryBytes,
			MaxContainers: h.MaxContainers,
			PortMin:       h.PortMin,
			PortMax:       h.PortMax,
			Cordoned:      h.Cordoned,
			Lost:          h.Lost,
			DiskBytes:     h.DiskBytes,
			GPUs:          h.GPUs,
			GPUIDs:        h.GPUIDs,
		}
		status.Discovered[name] = h.Discovered
	}
	return status
}

// forEachHost runs fn for every host in parallel and joins the errors.
func forEachHost(hosts []string, fn func(host string) error) error {
	fns := make([]func() error, len(hosts))
	for i, host := range hosts {
		fns[i] = func() error { return fn(host) }
	}
	return errors.Join(concurrently(fns...)...)
}

// concurrently runs fns at once and returns their errors, in order.
func concurrently(fns ...func() error) []error {
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn()
		}()
	}
	wg.Wait()
	return errs
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}
