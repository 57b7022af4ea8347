package backend

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/scheduler"
)

// A volume is a reservation in its pool's ledger like a container: it holds
// disk (its size) and no container slot. Its key is apart from containers'
// keys, and so is its spread group: volumes spread among volumes.

func volumeKey(pool, name string) string { return "volume:" + pool + "/" + name }

func volumeGroup(group string) string {
	if group == "" {
		return ""
	}
	return "volume:" + group
}

// volumeBinding is what a volume's reservation is bound to: its Docker
// name (the ledger's "container id").
func volumeBinding(name string) string { return "volume:" + name }

func volumeRequest(spec VolumeSpec) scheduler.Request {
	return scheduler.Request{
		Key:         volumeKey(spec.Pool, spec.Name),
		Name:        spec.Name,
		Constraints: spec.Constraints,
		SpreadGroup: volumeGroup(spec.SpreadGroup),
		Host:        spec.Host,
		DiskBytes:   spec.SizeBytes,
		Volume:      true,
	}
}

// request is spec's placement request, pinned to the host of the volumes
// it mounts: data decides where a container lands.
func (ps *poolState) request(spec ContainerSpec) (scheduler.Request, error) {
	req := schedulerRequest(spec)
	for _, m := range spec.Options.Mounts {
		if m.Type != engine.MountVolume {
			continue
		}
		vol, ok := ps.sched.Lookup(volumeKey(spec.Pool, m.Source))
		switch {
		case !ok:
			return req, withKind(ErrVolumeNotFound, "%s mounts volume %q, which pool %s does not have: create it with a berth_volume of the pool, "+
				"and mount it as source = berth_volume.NAME.name so that it is created first", spec.Name, m.Source, spec.Pool)
		case req.Host == "":
			req.Host, req.PinnedBy = vol.Host, "volume "+m.Source
		case req.Host != vol.Host && req.PinnedBy != "":
			return req, fmt.Errorf("%s mounts volumes on two hosts: %s is on %s, %s on %s; a container runs on one host", spec.Name, req.PinnedBy, req.Host, m.Source, vol.Host)
		case req.Host != vol.Host:
			return req, fmt.Errorf("%s is pinned to host %s but mounts volume %s, which lives on %s: unpin it (it follows its volume) or pin it to %s",
				spec.Name, req.Host, m.Source, vol.Host, vol.Host)
		}
	}
	return req, nil
}

// restoreVolumes loads a host's volumes of the pool into the ledger.
func (b *Embedded) restoreVolumes(ctx context.Context, sched *scheduler.Scheduler, host, pool string) error {
	eng, err := b.engines.Get(host)
	if err != nil {
		return err
	}
	volumes, err := eng.ListVolumes(ctx, pool)
	if err != nil {
		return err
	}
	for _, v := range volumes {
		_, _ = restoreVolume(sched, v)
	}
	return nil
}

func restoreVolume(sched *scheduler.Scheduler, v engine.Volume) (scheduler.Reservation, error) {
	return sched.Restore(scheduler.Reservation{
		ID:          v.ReservationID,
		Key:         volumeKey(v.Pool, v.Name),
		Name:        v.Name,
		Host:        v.Host,
		SpreadGroup: volumeGroup(v.SpreadGroup),
		State:       scheduler.Bound,
		ContainerID: volumeBinding(v.Name),
		DiskBytes:   v.SizeBytes,
		Volume:      true,
	})
}

// PlanVolume reserves tentatively under the volume's key, as PlanContainer
// does for containers, so that containers planned next that mount it
// follow it.
func (b *Embedded) PlanVolume(ctx context.Context, spec VolumeSpec, replacing bool) (PlanResult, error) {
	return b.planVolume(ctx, spec, replacing, true)
}

// CheckVolume is PlanVolume for berthd, whose ledger is shared: it holds
// nothing (a volume is placed at its create), and a replacement is not
// checked, since the volume it replaces still holds its disk there.
func (b *Embedded) CheckVolume(ctx context.Context, spec VolumeSpec, replacing bool) (PlanResult, error) {
	return b.planVolume(ctx, spec, replacing, false)
}

func (b *Embedded) planVolume(ctx context.Context, spec VolumeSpec, replacing, hold bool) (PlanResult, error) {
	ps, err := b.pool(ctx, spec.Pool)
	if err != nil || (replacing && !hold) {
		return PlanResult{}, err
	}
	if old, ok := ps.sched.Lookup(volumeKey(spec.Pool, spec.Name)); ok && old.State == scheduler.Bound && replacing {
		_ = ps.sched.Release(old.ID)
	}
	res, err := ps.sched.Reserve(ctx, volumeRequest(spec))
	if err != nil {
		return PlanResult{}, err
	}
	if res.State == scheduler.Bound {
		return PlanResult{}, volumeInUse(spec, res.Host)
	}
	if !hold {
		_ = ps.sched.Release(res.ID)
	}
	result := PlanResult{Warnings: b.skippedOn(ps)}
	if spec.Host != "" {
		result.Host = res.Host
	}
	return result, nil
}

func volumeInUse(spec VolumeSpec, host string) error {
	return fmt.Errorf("%w: pool %s already has a volume named %s (on %s): names are unique within a pool; choose another name or import it with `terraform import <address> %s/%s`",
		ErrDuplicateName, spec.Pool, spec.Name, host, spec.Pool, spec.Name)
}

// CreateVolume places the volume, creates it on its host and verifies the
// host's disk against the engine: another process may have placed a volume
// there meanwhile. Of volumes that overcommit a host's disk together, the
// later (by creation time, then name) yields and places again.
func (b *Embedded) CreateVolume(ctx context.Context, spec VolumeSpec) (VolumeState, error) {
	ps, err := b.pool(ctx, spec.Pool)
	if err != nil {
		return VolumeState{}, err
	}
	req := volumeRequest(spec)
	for range maxPlacementAttempts {
		res, err := ps.sched.Reserve(ctx, req)
		if err != nil {
			return VolumeState{}, err
		}
		if res.State == scheduler.Bound {
			return VolumeState{}, volumeInUse(spec, res.Host)
		}
		state, retry, err := b.tryCreateVolume(ctx, ps, spec, res)
		if err == nil || !retry {
			return state, err
		}
	}
	return VolumeState{}, fmt.Errorf("placing volume %s in pool %s: gave up after %d attempts lost to concurrent creates", spec.Name, spec.Pool, maxPlacementAttempts)
}

// tryCreateVolume creates the volume on res's host. On failure res is
// released; retry reports that the volume yielded to another's.
func (b *Embedded) tryCreateVolume(ctx context.Context, ps *poolState, spec VolumeSpec, res scheduler.Reservation) (VolumeState, bool, error) {
	eng, err := b.engines.Get(res.Host)
	if err != nil {
		_ = ps.sched.Release(res.ID)
		return VolumeState{}, false, err
	}
	created, err := eng.CreateVolume(ctx, engine.VolumeSpec{
		Pool: spec.Pool, Name: spec.Name, ReservationID: res.ID, Driver: spec.Driver, DriverOpts: spec.DriverOpts,
		Labels: spec.Labels, SizeBytes: spec.SizeBytes, SpreadGroup: spec.SpreadGroup, Constraints: spec.Constraints,
	})
	if err != nil {
		if engine.IsUnreachable(err) {
			ps.sched.SetUnhealthy(res.Host, err.Error())
		}
		_ = ps.sched.Release(res.ID)
		return VolumeState{}, false, fmt.Errorf("creating volume %s on %s: %w", spec.Name, res.Host, err)
	}
	fits, err := b.verifyVolume(ctx, ps, eng, *created)
	if err != nil || !fits {
		if rmErr := eng.RemoveVolume(context.WithoutCancel(ctx), spec.Name); rmErr != nil {
			err = errors.Join(err, rmErr)
		}
		_ = ps.sched.Release(res.ID)
		if err != nil {
			return VolumeState{}, false, fmt.Errorf("verifying volume %s on %s: %w", spec.Name, res.Host, err)
		}
		return VolumeState{}, true, nil
	}
	if _, err := ps.sched.Bind(res.ID, volumeBinding(spec.Name)); err != nil {
		return VolumeState{}, false, err
	}
	return volumeState(*created), false, nil
}

// verifyVolume replays the host's volumes of the pool in creation order
// against its declared disk, loading other processes' volumes into the
// ledger on the way. It reports whether mine still fits.
func (b *Embedded) verifyVolume(ctx context.Context, ps *poolState, eng *engine.Engine, mine engine.Volume) (bool, error) {
	host, ok := ps.sched.Host(mine.Host)
	if !ok || host.DiskBytes == 0 {
		return true, nil
	}
	volumes, err := eng.ListVolumes(ctx, mine.Pool)
	if err != nil {
		return false, err
	}
	sort.Slice(volumes, func(i, j int) bool {
		if volumes[i].CreatedAt != volumes[j].CreatedAt {
			return volumes[i].CreatedAt < volumes[j].CreatedAt
		}
		return volumes[i].Name < volumes[j].Name
	})
	var used int64
	for _, v := range volumes {
		used += v.SizeBytes
		if v.Name == mine.Name {
			return used <= host.DiskBytes, nil
		}
		_, _ = restoreVolume(ps.sched, v)
	}
	return false, fmt.Errorf("volume %s is not listed on %s right after its create", mine.Name, mine.Host)
}

func volumeState(v engine.Volume) VolumeState {
	return VolumeState{
		ReservationID: v.ReservationID,
		Spec: VolumeSpec{
			Pool: v.Pool, Name: v.Name, Driver: v.Driver, DriverOpts: v.DriverOpts, Labels: v.Labels,
			SizeBytes: v.SizeBytes, SpreadGroup: v.SpreadGroup, Constraints: v.Constraints, Host: v.Host,
		},
	}
}

// ReadVolume inspects the volume on its host: nil when it is gone, or its
// host was written off as lost.
func (b *Embedded) ReadVolume(ctx context.Context, ref VolumeRef) (*VolumeState, error) {
	eng, err := b.engines.Get(ref.Host)
	if err != nil {
		return nil, err
	}
	v, err := eng.InspectVolume(ctx, ref.Name)
	if err != nil && b.lostHost(ctx, ref.Pool, ref.Host) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading volume %s/%s on %s: %w", ref.Pool, ref.Name, ref.Host, err)
	}
	if v == nil || v.Pool != ref.Pool {
		return nil, nil
	}
	state := volumeState(*v)
	return &state, nil
}

// DeleteVolume removes the volume and gives its disk back. It is refused,
// naming them, while containers mount it: data is never removed under a
// container.
func (b *Embedded) DeleteVolume(ctx context.Context, ref VolumeRef) error {
	eng, err := b.engines.Get(ref.Host)
	if err != nil {
		return err
	}
	users, err := eng.VolumeUsers(ctx, ref.Name)
	if err == nil && len(users) > 0 {
		return fmt.Errorf("volume %s/%s on %s is mounted by %s: destroy those containers (or remove the mount) first",
			ref.Pool, ref.Name, ref.Host, strings.Join(users, ", "))
	}
	if err == nil {
		err = eng.RemoveVolume(ctx, ref.Name)
	}
	if err != nil && !b.lostHost(ctx, ref.Pool, ref.Host) {
		return fmt.Errorf("removing volume %s/%s from %s: %w", ref.Pool, ref.Name, ref.Host, err)
	}
	if ps, ok := b.pools.loaded(ref.Pool); ok {
		if res, held := ps.sched.Lookup(volumeKey(ref.Pool, ref.Name)); held && res.Host == ref.Host {
			_ = ps.sched.Release(res.ID)
		}
	}
	return nil
}

// FindVolume looks the volume up on every host of the pool (import).
func (b *Embedded) FindVolume(ctx context.Context, pool, name string) (*VolumeState, error) {
	status, err := b.ReadPool(ctx, pool)
	if err != nil {
		return nil, err
	}
	if status == nil {
		return nil, withKind(ErrPoolNotFound, "pool %q not found on any engine of the provider block (%s)", pool, strings.Join(b.engines.Names(), ", "))
	}
	var mu sync.Mutex
	var found []engine.Volume
	err = forEachHost(status.Spec.notLost(keys(status.Spec.Hosts)), func(host string) error {
		eng, err := b.engines.Get(host)
		if err != nil {
			return err
		}
		v, err := eng.InspectVolume(ctx, name)
		if err == nil && v != nil && v.Pool == pool {
			mu.Lock()
			found = append(found, *v)
			mu.Unlock()
		}
		return err
	})
	if len(found) == 0 {
		return nil, err
	}
	slices.SortFunc(found, func(a, b engine.Volume) int { return strings.Compare(a.Host, b.Host) })
	state := volumeState(found[0])
	return &state, nil
}
