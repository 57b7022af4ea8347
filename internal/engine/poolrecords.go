package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"
)

// Pool records are labelled volumes named
// berth-pool-<pool>-<generation>-<random>. Volume labels are immutable, so
// a write creates a volume of the next generation and then removes older
// ones: readers always find at least one record, and the newest volume
// (highest generation, ties broken by name) wins. The random part keeps
// two concurrent writers from colliding on a name, since creating a volume
// whose name exists silently returns the existing one.

// storedRecord is one record volume.
type storedRecord struct {
	volume     string
	generation int64
	record     PoolRecord
}

func (s storedRecord) olderThan(other storedRecord) bool {
	if s.generation != other.generation {
		return s.generation < other.generation
	}
	return s.volume < other.volume
}

// WritePoolRecord stores rec on the engine, replacing any earlier record of
// the same pool. When two processes write at once, one of them wins.
func (e *Engine) WritePoolRecord(ctx context.Context, rec PoolRecord) error {
	if rec.Name == "" {
		return fmt.Errorf("engine %s: write pool record: the pool has no name", e.name)
	}
	encoded, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("engine %s: encode record of pool %s: %w", e.name, rec.Name, err)
	}
	existing, err := e.listRecordVolumes(ctx, rec.Name)
	if err != nil {
		return err
	}
	generation := int64(1)
	if len(existing) > 0 {
		generation = existing[len(existing)-1].generation + 1
	}
	if _, err := e.createMarkVolume(ctx, "write record of pool "+rec.Name, fmt.Sprintf("berth-pool-%s-%d", rec.Name, generation), map[string]string{
		LabelPoolRecord:    rec.Name,
		LabelRecord:        string(encoded),
		LabelRecordVersion: strconv.FormatInt(generation, 10),
	}); err != nil {
		return err
	}
	return e.removeOlderRecords(ctx, rec.Name)
}

// removeOlderRecords keeps only the newest generation, whoever wrote it.
func (e *Engine) removeOlderRecords(ctx context.Context, pool string) error {
	stored, err := e.listRecordVolumes(ctx, pool)
	if err != nil {
		return err
	}
	if len(stored) == 0 {
		return nil
	}
	newest := stored[len(stored)-1]
	for _, s := range stored {
		if s.olderThan(newest) {
			if err := e.removeVolume(ctx, "pool record volume", s.volume); err != nil {
				return err
			}
		}
	}
	return nil
}

// ReadPoolRecord returns the pool's newest record, or nil, nil when the
// engine has none.
func (e *Engine) ReadPoolRecord(ctx context.Context, pool string) (*PoolRecord, error) {
	stored, err := e.listRecordVolumes(ctx, pool)
	if err != nil {
		return nil, err
	}
	if len(stored) == 0 {
		return nil, nil
	}
	newest := stored[len(stored)-1].record
	return &newest, nil
}

// DeletePoolRecord removes every record of the pool. Deleting a pool that
// has no record is not an error.
func (e *Engine) DeletePoolRecord(ctx context.Context, pool string) error {
	stored, err := e.listRecordVolumes(ctx, pool)
	if err != nil {
		return err
	}
	for _, s := range stored {
		if err := e.removeVolume(ctx, "pool record volume", s.volume); err != nil {
			return err
		}
	}
	return nil
}

// removeVolume removes one of Berth's volumes (what says which kind).
func (e *Engine) removeVolume(ctx context.Context, what, name string) error {
	err := e.do(ctx, "remove "+what+" "+name, 0, func(ctx context.Context) error {
		return e.api.VolumeRemove(ctx, name, false)
	})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return e.fail("remove "+what+" "+name, err)
	}
	return nil
}

// listVolumes returns the engine's volumes that match selection; what
// names the call in errors.
func (e *Engine) listVolumes(ctx context.Context, what string, selection filters.Args) ([]volume.Volume, error) {
	var resp volume.ListResponse
	err := e.do(ctx, "list "+what, 0, func(ctx context.Context) (err error) {
		resp, err = e.api.VolumeList(ctx, volume.ListOptions{Filters: selection})
		return err
	})
	if err != nil {
		return nil, e.fail("list "+what, err)
	}
	volumes := make([]volume.Volume, 0, len(resp.Volumes))
	for _, v := range resp.Volumes {
		if v != nil {
			volumes = append(volumes, *v)
		}
	}
	return volumes, nil
}

// listRecordVolumes returns the record volumes of pool ("" for all pools),
// oldest first.
func (e *Engine) listRecordVolumes(ctx context.Context, pool string) ([]storedRecord, error) {
	selector := LabelPoolRecord
	if pool != "" {
		selector = LabelPoolRecord + "=" + pool
	}
	listed, err := e.listVolumes(ctx, "pool records", filters.NewArgs(filters.Arg("label", selector)))
	if err != nil {
		return nil, err
	}
	stored := make([]storedRecord, 0, len(listed))
	for _, v := range listed {
		s := storedRecord{volume: v.Name}
		if s.generation, err = strconv.ParseInt(v.Labels[LabelRecordVersion], 10, 64); err != nil {
			return nil, fmt.Errorf("engine %s: pool record volume %s: bad label %s=%q",
				e.name, v.Name, LabelRecordVersion, v.Labels[LabelRecordVersion])
		}
		if err := json.Unmarshal([]byte(v.Labels[LabelRecord]), &s.record); err != nil {
			return nil, fmt.Errorf("engine %s: pool record volume %s: label %s: %w", e.name, v.Name, LabelRecord, err)
		}
		// The pool label is what the filter matched; trust it over the JSON.
		s.record.Name = v.Labels[LabelPoolRecord]
		stored = append(stored, s)
	}
	sort.Slice(stored, func(i, j int) bool { return stored[i].olderThan(stored[j]) })
	return stored, nil
}
