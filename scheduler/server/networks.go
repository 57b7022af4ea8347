package server

import (
	"context"
	"fmt"

	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

// networkPath refuses a body that names another network than the path:
// roles are checked on the path's pool.
func networkPath(p params, spec backend.NetworkSpec) error {
	if spec.Pool != p.pool || spec.Name != p.id {
		return apiError(api.CodeBadRequest, fmt.Sprintf("the body names network %s/%s, the path %s/%s", spec.Pool, spec.Name, p.pool, p.id))
	}
	return nil
}

// networkCommand decodes a T for a deploy route on the path's network.
func networkCommand[T any](specOf func(T) backend.NetworkSpec, do func(context.Context, T) (any, error)) handler {
	return func(ctx context.Context, p params) (any, error) {
		req, err := decode[T](p.body)
		if err != nil {
			return nil, err
		}
		if err := networkPath(p, specOf(req)); err != nil {
			return nil, err
		}
		if err := allow(ctx, RoleDeploy, p.pool); err != nil {
			return nil, err
		}
		return do(ctx, req)
	}
}

func (s *Server) planNetwork() handler {
	return networkCommand(func(r api.NetworkPlanRequest) backend.NetworkSpec { return r.Spec },
		func(ctx context.Context, r api.NetworkPlanRequest) (any, error) {
			return s.be.PlanNetwork(ctx, r.Spec, r.Current)
		})
}

func (s *Server) applyNetwork() handler {
	return networkCommand(func(r api.NetworkApplyRequest) backend.NetworkSpec { return r.Planned.Spec },
		func(ctx context.Context, r api.NetworkApplyRequest) (any, error) {
			return s.be.ApplyNetwork(ctx, r.Planned, r.Current)
		})
}

func (s *Server) deleteNetwork() handler {
	return networkCommand(func(r backend.NetworkStatus) backend.NetworkSpec { return r.Spec },
		func(ctx context.Context, r backend.NetworkStatus) (any, error) {
			return nil, s.be.DeleteNetwork(ctx, r)
		})
}

func (s *Server) getNetwork(ctx context.Context, p params) (any, error) {
	if err := allow(ctx, RoleRead, p.pool); err != nil {
		return nil, err
	}
	status, err := s.be.ReadNetwork(ctx, p.pool, p.id)
	if err != nil {
		return nil, err
	}
	if status == nil {
		return nil, apiError(api.CodeNetworkNotFound, fmt.Sprintf("network %q of pool %q is on none of berthd's engines", p.id, p.pool))
	}
	return status, nil
}
