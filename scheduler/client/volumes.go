package client

import (
	"context"
	"net/http"

	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

// Volumes in remote mode: berthd places a volume at its create; the plan
// only checks that it fits. This process remembers the volumes it planned,
// so that a container planned next that mounts one (which berthd does not
// have yet) is placed at apply instead of failing.

func plannedVolume(pool, name string) string { return "volume:" + pool + "/" + name }

// PlanVolume asks berthd whether the volume fits.
func (c *Client) PlanVolume(ctx context.Context, spec backend.VolumeSpec, replacing bool) (backend.PlanResult, error) {
	var result backend.PlanResult
	err := c.t.do(ctx, http.MethodPost, api.PathVolumePlan, "", api.VolumePlanRequest{Spec: spec, Replacing: replacing}, &result)
	if isCode(err, api.CodePoolNotFound) && c.plannedHere(spec.Pool) {
		err = nil // the pool is created by this same apply
	}
	if err == nil {
		c.mu.Lock()
		c.planned[plannedVolume(spec.Pool, spec.Name)] = true
		c.mu.Unlock()
	}
	return result, err
}

// CreateVolume has berthd place and create the volume.
func (c *Client) CreateVolume(ctx context.Context, spec backend.VolumeSpec) (backend.VolumeState, error) {
	var state backend.VolumeState
	err := c.t.do(ctx, http.MethodPost, api.PathVolumes, newKey("volume"), api.VolumeCreateRequest{Spec: spec}, &state)
	return state, err
}

// ReadVolume observes a volume; nil when it is gone.
func (c *Client) ReadVolume(ctx context.Context, ref backend.VolumeRef) (*backend.VolumeState, error) {
	var state backend.VolumeState
	err := c.t.do(ctx, http.MethodPost, api.PathVolumeRead, "", api.VolumeRefRequest{Ref: ref}, &state)
	return found(&state, err)
}

// DeleteVolume removes a volume; one that is gone already is not an error.
func (c *Client) DeleteVolume(ctx context.Context, ref backend.VolumeRef) error {
	err := c.t.do(ctx, http.MethodPost, api.PathVolumeDelete, newKey("delete-volume"), api.VolumeRefRequest{Ref: ref}, nil)
	if isCode(err, api.CodeVolumeNotFound) {
		return nil
	}
	return err
}

// FindVolume looks a volume up by pool and name (import).
func (c *Client) FindVolume(ctx context.Context, pool, name string) (*backend.VolumeState, error) {
	var state backend.VolumeState
	err := c.t.do(ctx, http.MethodGet, api.VolumeFindPath(pool, name), "", nil, &state)
	return found(&state, err)
}

// found is a read's answer: nil, nil when berthd has no such volume.
func found(state *backend.VolumeState, err error) (*backend.VolumeState, error) {
	if isCode(err, api.CodeVolumeNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return state, nil
}
