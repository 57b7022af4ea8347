package server

import (
	"context"
	"fmt"

	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

// poolSpec decodes a pool spec for the pool named in the path.
func poolSpec(p params) (backend.PoolSpec, error) {
	spec, err := decode[backend.PoolSpec](p.body)
	if err != nil {
		return spec, err
	}
	if spec.Name == "" {
		spec.Name = p.pool
	}
	if spec.Name != p.pool {
		return spec, apiError(api.CodeBadRequest, fmt.Sprintf("the body names pool %q, the path %q", spec.Name, p.pool))
	}
	return spec, nil
}

func (s *Server) applyPool(ctx context.Context, p params) (any, error) {
	spec, err := poolSpec(p)
	if err != nil {
		return nil, err
	}
	status, err := s.be.ApplyPool(ctx, spec)
	if err != nil {
		return nil, err
	}
	return status, s.rememberPool(ctx, spec)
}

func (s *Server) planPool(ctx context.Context, p params) (any, error) {
	spec, err := poolSpec(p)
	if err != nil {
		return nil, err
	}
	return s.be.CheckPool(ctx, spec)
}

func (s *Server) getPool(ctx context.Context, p params) (any, error) {
	if err := allow(ctx, RoleRead, p.pool); err != nil {
		return nil, err
	}
	status, err := s.be.ReadPool(ctx, p.pool)
	if err != nil {
		return nil, err
	}
	if status == nil {
		return nil, apiError(api.CodePoolNotFound, fmt.Sprintf("pool %q has no record on berthd's engines", p.pool))
	}
	return status, nil
}

func (s *Server) deletePool(ctx context.Context, p params) (any, error) {
	if err := s.be.DeletePool(ctx, p.pool); err != nil {
		return nil, err
	}
	return nil, s.forgetPool(ctx, p.pool)
}

// visiblePools are the pools applied through berthd that the token may read.
func (s *Server) visiblePools(ctx context.Context) ([]string, error) {
	names, err := s.poolNames(ctx)
	if err != nil {
		return nil, err
	}
	id := identityOf(ctx)
	visible := names[:0]
	for _, name := range names {
		if id.mayUse(RoleRead, name) {
			visible = append(visible, name)
		}
	}
	return visible, nil
}

func (s *Server) listPools(ctx context.Context, _ params) (any, error) {
	names, err := s.visiblePools(ctx)
	if err != nil {
		return nil, err
	}
	list := api.PoolList{Pools: []backend.PoolStatus{}}
	for _, name := range names {
		status, err := s.be.ReadPool(ctx, name)
		if err != nil {
			return nil, err
		}
		if status != nil {
			list.Pools = append(list.Pools, *status)
		}
	}
	return list, nil
}

func (s *Server) poolUsage(ctx context.Context, p params) (any, error) {
	if err := allow(ctx, RoleRead, p.pool); err != nil {
		return nil, err
	}
	return s.be.PoolUsage(ctx, p.pool)
}

func (s *Server) usage(ctx context.Context, _ params) (any, error) {
	names, err := s.visiblePools(ctx)
	if err != nil {
		return nil, err
	}
	list := api.UsageList{Pools: []backend.PoolUsage{}}
	for _, name := range names {
		usage, err := s.be.PoolUsage(ctx, name)
		if err != nil {
			return nil, err
		}
		list.Pools = append(list.Pools, usage)
	}
	return list, nil
}
