package engine

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/filters"
)

// A replacement created before its old container is destroyed
// (create_before_destroy) needs the old container's Docker name while the
// old one still runs. Terraform tells the create nothing about the old
// container, so the plan that chose the replacement leaves a replace mark
// beside it: a small labelled volume, berth-replace-<pool>.<name>-<random>,
// naming the container id (LabelMarkOf) and until when the mark holds. The create then
// retires the marked container: it renames it to RetiredName, which frees
// the name and keeps the container (and its capacity) until its destroy
// removes it by id.

// Labels on replace mark volumes.
const (
	LabelReplacePool  = "sh.berth.replace-pool" // the pool; what lists filter on
	LabelReplaceUntil = "sh.berth.replace-until"
)

// retiredInfix sits between a retired container's Docker name and its id.
const retiredInfix = ".retired-"

// RetiredName is the Docker name of a container whose replacement took
// its name.
func RetiredName(pool, name, id string) string {
	return DockerName(pool, name) + retiredInfix + shortID(id)
}

// retired reports whether a Berth container of pool/name, known to Docker
// as dockerName ("/…" as the API gives it), was retired.
func retired(dockerName, pool, name string) bool {
	return strings.TrimPrefix(dockerName, "/") != DockerName(pool, name)
}

// ReplaceMark records that a plan replaces a container.
type ReplaceMark struct {
	Volume      string
	ContainerID string
	Until       time.Time
}

// MarkReplaced leaves a replace mark for container id of pool/name that
// holds until the given time.
func (e *Engine) MarkReplaced(ctx context.Context, pool, name, id string, until time.Time) error {
	_, err := e.createMarkVolume(ctx, "write replace mark", "berth-replace-"+DockerName(pool, name), map[string]string{
		LabelReplacePool:  pool,
		LabelName:         name,
		LabelMarkOf:       id,
		LabelReplaceUntil: strconv.FormatInt(until.Unix(), 10),
	})
	return err
}

// ReplaceMarks returns the replace marks of container id of pool.
func (e *Engine) ReplaceMarks(ctx context.Context, pool, id string) ([]ReplaceMark, error) {
	selection := filters.NewArgs(filters.Arg("label", LabelReplacePool+"="+pool), filters.Arg("label", LabelMarkOf+"="+id))
	listed, err := e.listVolumes(ctx, "replace marks", selection)
	if err != nil {
		return nil, err
	}
	marks := make([]ReplaceMark, 0, len(listed))
	for _, v := range listed {
		until, err := int64Label(v.Labels, LabelReplaceUntil)
		if err != nil {
			return nil, fmt.Errorf("engine %s: replace mark %s: %w", e.name, v.Name, err)
		}
		marks = append(marks, ReplaceMark{Volume: v.Name, ContainerID: id, Until: time.Unix(until, 0)})
	}
	return marks, nil
}

// RemoveReplaceMark removes one mark; one already gone is not an error.
func (e *Engine) RemoveReplaceMark(ctx context.Context, m ReplaceMark) error {
	return e.removeVolume(ctx, "replace mark", m.Volume)
}

// Retire renames container id of pool/name to its RetiredName, freeing
// the name for its replacement; a container retired already stays so.
func (e *Engine) Retire(ctx context.Context, pool, name, id string) error {
	to := RetiredName(pool, name, id)
	err := e.do(ctx, "rename container "+shortID(id)+" to "+to, 0, func(ctx context.Context) error {
		return e.api.ContainerRename(ctx, id, to)
	})
	if err != nil {
		if c, inspectErr := e.InspectContainer(ctx, id); inspectErr == nil && c != nil && c.Retired {
			return nil // renamed by an earlier try whose answer was lost
		}
		return e.fail("rename container "+shortID(id)+" to "+to, err)
	}
	return nil
}
