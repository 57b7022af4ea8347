package engine

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"
)

// Labels on every Berth volume (besides LabelPool, LabelReservation, and
// LabelSpreadGroup and LabelConstraints when set):
// they carry what the ledger needs, so any process rebuilds the volume's
// reservation of disk from the engine.
const (
	LabelVolume     = "sh.berth.volume" // the volume's name in its pool
	LabelVolumeSize = "sh.berth.size"   // bytes reserved against the host's disk
)

// VolumeSpec is a Berth volume to create. The Docker volume is named Name.
type VolumeSpec struct {
	Pool          string
	Name          string
	ReservationID string
	Driver        string // "" is Docker's default, local
	DriverOpts    map[string]string
	Labels        map[string]string // the user's; sh.berth.* are Berth's
	SizeBytes     int64
	SpreadGroup   string
	Constraints   []string
}

// Volume is a Berth volume as observed on an engine.
type Volume struct {
	VolumeSpec
	Host      string
	CreatedAt string // Docker's, RFC 3339
}

// CreateVolume creates the labelled volume. Docker answers a create of an
// existing name with the existing volume, so the answer is checked: a
// volume of that name that is not this one is an error naming its owner.
func (e *Engine) CreateVolume(ctx context.Context, spec VolumeSpec) (*Volume, error) {
	labels := maps.Clone(spec.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelPool] = spec.Pool
	labels[LabelVolume] = spec.Name
	labels[LabelReservation] = spec.ReservationID
	labels[LabelVolumeSize] = strconv.FormatInt(spec.SizeBytes, 10)
	if spec.SpreadGroup != "" {
		labels[LabelSpreadGroup] = spec.SpreadGroup
	}
	if len(spec.Constraints) > 0 {
		labels[LabelConstraints] = mustJSON(spec.Constraints)
	}
	op := "create volume " + spec.Name
	var created volume.Volume
	err := e.do(ctx, op, 0, func(ctx context.Context) (err error) {
		created, err = e.api.VolumeCreate(ctx, volume.CreateOptions{Name: spec.Name, Driver: spec.Driver, DriverOpts: spec.DriverOpts, Labels: labels})
		return err
	})
	if err != nil {
		return nil, e.refusedVolume(op, err)
	}
	v, err := e.volumeOf(created)
	if err != nil {
		return nil, err
	}
	if v == nil || v.Pool != spec.Pool || v.ReservationID != spec.ReservationID {
		return nil, fmt.Errorf("engine %s: a volume named %s already exists there (%s): choose another name, or remove that volume",
			e.name, spec.Name, describeOwner(v))
	}
	return v, nil
}

func describeOwner(v *Volume) string {
	if v == nil {
		return "not made by Berth"
	}
	return "Berth volume " + v.Name + " of pool " + v.Pool
}

// refusedVolume words a create the engine refused (an unknown driver, bad
// options): the engine's own message says what.
func (e *Engine) refusedVolume(op string, err error) error {
	if IsUnreachable(err) {
		return err
	}
	return &RefusedError{Engine: e.name, Op: op, Err: err}
}

// ListVolumes returns the Berth volumes of pool on the engine.
func (e *Engine) ListVolumes(ctx context.Context, pool string) ([]Volume, error) {
	listed, err := e.listVolumes(ctx, "volumes", filters.NewArgs(filters.Arg("label", LabelPool+"="+pool), filters.Arg("label", LabelVolume)))
	if err != nil {
		return nil, err
	}
	volumes := make([]Volume, 0, len(listed))
	for _, dv := range listed {
		v, err := e.volumeOf(dv)
		if err != nil {
			return nil, err
		}
		if v != nil {
			volumes = append(volumes, *v)
		}
	}
	sort.Slice(volumes, func(i, j int) bool { return volumes[i].Name < volumes[j].Name })
	return volumes, nil
}

// InspectVolume returns the Berth volume named name, or nil, nil when the
// engine has no volume of that name (or one Berth did not make).
func (e *Engine) InspectVolume(ctx context.Context, name string) (*Volume, error) {
	var dv volume.Volume
	err := e.do(ctx, "inspect volume "+name, 0, func(ctx context.Context) (err error) {
		dv, err = e.api.VolumeInspect(ctx, name)
		return err
	})
	if cerrdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, e.fail("inspect volume "+name, err)
	}
	return e.volumeOf(dv)
}

// volumeOf reads a Docker volume's Berth labels; nil when it has none.
func (e *Engine) volumeOf(dv volume.Volume) (*Volume, error) {
	if dv.Labels[LabelVolume] == "" {
		return nil, nil
	}
	v := &Volume{Host: e.name, CreatedAt: dv.CreatedAt, VolumeSpec: VolumeSpec{
		Pool:          dv.Labels[LabelPool],
		Name:          dv.Labels[LabelVolume],
		ReservationID: dv.Labels[LabelReservation],
		Driver:        dv.Driver,
		DriverOpts:    dv.Options,
		SpreadGroup:   dv.Labels[LabelSpreadGroup],
	}}
	var err error
	if v.SizeBytes, err = int64Label(dv.Labels, LabelVolumeSize); err != nil {
		return nil, fmt.Errorf("engine %s: volume %s: %w", e.name, dv.Name, err)
	}
	if v.Constraints, err = stringsLabel(dv.Labels, LabelConstraints); err != nil {
		return nil, fmt.Errorf("engine %s: volume %s: %w", e.name, dv.Name, err)
	}
	for k, val := range dv.Labels {
		if !strings.HasPrefix(k, LabelPrefix) {
			if v.Labels == nil {
				v.Labels = map[string]string{}
			}
			v.Labels[k] = val
		}
	}
	return v, nil
}

// VolumeUsers names the containers (any, running or not) that mount the
// volume.
func (e *Engine) VolumeUsers(ctx context.Context, name string) ([]string, error) {
	var summaries []container.Summary
	err := e.do(ctx, "list containers using volume "+name, 0, func(ctx context.Context) (err error) {
		summaries, err = e.api.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("volume", name))})
		return err
	})
	if err != nil {
		return nil, e.fail("list containers using volume "+name, err)
	}
	users := make([]string, 0, len(summaries))
	for _, s := range summaries {
		user := strings.TrimPrefix(strings.Join(s.Names, ","), "/")
		if pool, berth := s.Labels[LabelPool], s.Labels[LabelName]; berth != "" {
			user = pool + "/" + berth
		}
		users = append(users, user)
	}
	sort.Strings(users)
	return users, nil
}

// RemoveVolume removes a volume; one that is gone already is not an error.
func (e *Engine) RemoveVolume(ctx context.Context, name string) error {
	return e.removeVolume(ctx, "volume", name)
}
