package server

import (
	"context"
	"fmt"

	"github.com/berthsh/terraform-provider-berth/scheduler/api"
)

// Volumes are placed at their create, in berthd's shared ledger: a plan
// only checks (CheckVolume), so an unapplied plan holds no disk.

func (s *Server) planVolume() handler {
	return decoded(RoleRead, func(r api.VolumePlanRequest) string { return r.Spec.Pool },
		func(ctx context.Context, req api.VolumePlanRequest) (any, error) {
			return s.be.CheckVolume(ctx, req.Spec, req.Replacing)
		})
}

func (s *Server) createVolume() handler {
	return decoded(RoleDeploy, func(r api.VolumeCreateRequest) string { return r.Spec.Pool },
		func(ctx context.Context, req api.VolumeCreateRequest) (any, error) {
			return s.be.CreateVolume(ctx, req.Spec)
		})
}

func (s *Server) readVolume() handler {
	return decoded(RoleRead, func(r api.VolumeRefRequest) string { return r.Ref.Pool },
		func(ctx context.Context, req api.VolumeRefRequest) (any, error) {
			state, err := s.be.ReadVolume(ctx, req.Ref)
			if err == nil && state == nil {
				return nil, volumeNotFound(req.Ref.Pool, req.Ref.Name)
			}
			return state, err
		})
}

func (s *Server) deleteVolume() handler {
	return decoded(RoleDeploy, func(r api.VolumeRefRequest) string { return r.Ref.Pool },
		func(ctx context.Context, req api.VolumeRefRequest) (any, error) {
			return nil, s.be.DeleteVolume(ctx, req.Ref)
		})
}

func (s *Server) findVolume(ctx context.Context, p params) (any, error) {
	pool, name := p.query.Get("pool"), p.query.Get("name")
	if pool == "" || name == "" {
		return nil, apiError(api.CodeBadRequest, "find needs ?pool=P&name=N")
	}
	if err := allow(ctx, RoleRead, pool); err != nil {
		return nil, err
	}
	state, err := s.be.FindVolume(ctx, pool, name)
	if err == nil && state == nil {
		return nil, volumeNotFound(pool, name)
	}
	return state, err
}

func volumeNotFound(pool, name string) error {
	return apiError(api.CodeVolumeNotFound, fmt.Sprintf("pool %s has no volume named %s", pool, name))
}
