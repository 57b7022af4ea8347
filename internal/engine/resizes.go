package engine

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"
)

// Resize markers make in-place resizes visible to other processes. Docker
// cannot rewrite a container's labels, so each resize is recorded as a
// small labelled volume beside the container's engine, named
// berth-resize-<pool>.<name>-<sequence>-<random>: it carries the new
// reservation and a sequence number per container (the newest marker
// wins). Its creation time, in whole seconds on the engine's clock, orders
// it against container creates, as verification needs.

// Labels on resize marker volumes.
const (
	LabelResizePool     = "sh.berth.resize-pool" // the pool; what lists filter on
	LabelResizeSequence = "sh.berth.resize-sequence"
)

// ResizeMarker records one in-place resize of a container.
type ResizeMarker struct {
	Volume      string
	Pool        string
	Name        string // Berth's name of the container
	ContainerID string
	MilliCPU    int64
	MemoryBytes int64
	Sequence    int64     // per container, the newest marker has the highest
	Created     time.Time // whole seconds
}

// Newer reports whether m supersedes other (same container).
func (m ResizeMarker) Newer(other ResizeMarker) bool {
	if m.Sequence != other.Sequence {
		return m.Sequence > other.Sequence
	}
	return m.Volume > other.Volume
}

// WriteResizeMarker stores m and returns it with its volume name and
// creation time.
func (e *Engine) WriteResizeMarker(ctx context.Context, m ResizeMarker) (ResizeMarker, error) {
	created, err := e.createMarkVolume(ctx, "write resize marker", fmt.Sprintf("berth-resize-%s-%d", DockerName(m.Pool, m.Name), m.Sequence), map[string]string{
		LabelResizePool:     m.Pool,
		LabelName:           m.Name,
		LabelMarkOf:         m.ContainerID,
		LabelCPU:            strconv.FormatInt(m.MilliCPU, 10),
		LabelMemory:         strconv.FormatInt(m.MemoryBytes, 10),
		LabelResizeSequence: strconv.FormatInt(m.Sequence, 10),
	})
	if err != nil {
		return m, err
	}
	m.Volume = created.Name
	if m.Created, err = markerTime(created); err != nil {
		return m, fmt.Errorf("engine %s: resize marker %s: %w", e.name, m.Volume, err)
	}
	return m, nil
}

// ListResizeMarkers returns the resize markers of the pool's containers on
// this engine; containerID narrows them to one container ("" for all).
func (e *Engine) ListResizeMarkers(ctx context.Context, pool, containerID string) ([]ResizeMarker, error) {
	selection := filters.NewArgs(filters.Arg("label", LabelResizePool+"="+pool))
	if containerID != "" {
		selection.Add("label", LabelMarkOf+"="+containerID)
	}
	listed, err := e.listVolumes(ctx, "resize markers", selection)
	if err != nil {
		return nil, err
	}
	markers := make([]ResizeMarker, 0, len(listed))
	for _, v := range listed {
		m, err := decodeMarker(v)
		if err != nil {
			// Guessing would miscount the host: refuse, naming the volume.
			return nil, fmt.Errorf("engine %s: resize marker %s: %w", e.name, v.Name, err)
		}
		markers = append(markers, m)
	}
	return markers, nil
}

// RemoveResizeMarker removes one marker; one already gone is not an error.
func (e *Engine) RemoveResizeMarker(ctx context.Context, m ResizeMarker) error {
	return e.removeVolume(ctx, "resize marker", m.Volume)
}

func decodeMarker(v volume.Volume) (ResizeMarker, error) {
	m := ResizeMarker{Volume: v.Name, Pool: v.Labels[LabelResizePool], Name: v.Labels[LabelName], ContainerID: v.Labels[LabelMarkOf]}
	var err error
	if m.MilliCPU, err = int64Label(v.Labels, LabelCPU); err != nil {
		return m, err
	}
	if m.MemoryBytes, err = int64Label(v.Labels, LabelMemory); err != nil {
		return m, err
	}
	if m.Sequence, err = int64Label(v.Labels, LabelResizeSequence); err != nil {
		return m, err
	}
	if m.ContainerID == "" {
		return m, fmt.Errorf("label %s is missing", LabelMarkOf)
	}
	m.Created, err = markerTime(v)
	return m, err
}

func markerTime(v volume.Volume) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v.CreatedAt)
	if err != nil {
		return t, fmt.Errorf("created time %q: %w", v.CreatedAt, err)
	}
	return t, nil
}
