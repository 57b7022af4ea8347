package server

import (
	"context"
	"fmt"
	"sync"

	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

// decoded makes a handler that decodes a T, checks the token's role on
// the pool T names, then runs do.
func decoded[T any](role Role, poolOf func(T) string, do func(context.Context, T) (any, error)) handler {
	return func(ctx context.Context, p params) (any, error) {
		req, err := decode[T](p.body)
		if err != nil {
			return nil, err
		}
		if err := allow(ctx, role, poolOf(req)); err != nil {
			return nil, err
		}
		return do(ctx, req)
	}
}

func (s *Server) createContainer() handler {
	return decoded(RoleDeploy, func(r api.CreateRequest) string { return r.Spec.Pool },
		func(ctx context.Context, req api.CreateRequest) (any, error) { return s.leases.create(ctx, req) })
}

func (s *Server) planResize() handler {
	return decoded(RoleRead, func(r api.ResizeRequest) string { return r.Current.Ref.Pool },
		func(ctx context.Context, req api.ResizeRequest) (any, error) {
			fits, reason, err := s.be.PlanResize(ctx, req.Current, req.Resources)
			if err != nil {
				return nil, err
			}
			return api.PlanResizeResponse{Fits: fits, Reason: reason}, nil
		})
}

func (s *Server) resizeContainer() handler {
	return decoded(RoleDeploy, func(r api.ResizeRequest) string { return r.Current.Ref.Pool },
		func(ctx context.Context, req api.ResizeRequest) (any, error) {
			return s.be.ResizeContainer(ctx, req.Current, req.Resources)
		})
}

func (s *Server) reconfigureContainer() handler {
	return decoded(RoleDeploy, func(r api.ReconfigureRequest) string { return r.Current.Ref.Pool },
		func(ctx context.Context, req api.ReconfigureRequest) (any, error) {
			return s.be.ReconfigureContainer(ctx, req.Current, req.Limits, req.Restart)
		})
}

func (s *Server) startContainer() handler {
	return decoded(RoleDeploy, func(r api.StartRequest) string { return r.Current.Ref.Pool },
		func(ctx context.Context, req api.StartRequest) (any, error) {
			return s.be.StartContainer(ctx, req.Current, req.WaitHealthy)
		})
}

func (s *Server) stopContainer() handler {
	return decoded(RoleDeploy, func(r api.StopRequest) string { return r.Current.Ref.Pool },
		func(ctx context.Context, req api.StopRequest) (any, error) {
			return s.be.StopContainer(ctx, req.Current, req.StopTimeout)
		})
}

func (s *Server) deleteContainer() handler {
	return decoded(RoleDeploy, func(r api.DeleteRequest) string { return r.Ref.Pool },
		func(ctx context.Context, req api.DeleteRequest) (any, error) {
			return nil, s.be.DeleteContainer(ctx, req.Ref, req.StopTimeout)
		})
}

func (s *Server) readContainers(ctx context.Context, p params) (any, error) {
	req, err := decode[api.ReadRequest](p.body)
	if err != nil {
		return nil, err
	}
	if len(req.Refs) > api.MaxReadBatch {
		return nil, apiError(api.CodeBadRequest, fmt.Sprintf("%d refs in one read; at most %d", len(req.Refs), api.MaxReadBatch))
	}
	for _, ref := range req.Refs {
		if err := allow(ctx, RoleRead, ref.Pool); err != nil {
			return nil, err
		}
	}
	resp := api.ReadResponse{Containers: make([]*backend.ContainerState, len(req.Refs)), Errors: make([]*api.Error, len(req.Refs))}
	var wg sync.WaitGroup
	for i, ref := range req.Refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			state, err := s.be.ReadContainer(ctx, ref)
			if err != nil {
				_, resp.Errors[i] = errorOf(err)
				return
			}
			resp.Containers[i] = state
		}()
	}
	wg.Wait()
	return resp, nil
}

func (s *Server) findContainer(ctx context.Context, p params) (any, error) {
	pool, name := p.query.Get("pool"), p.query.Get("name")
	if pool == "" || name == "" {
		return nil, apiError(api.CodeBadRequest, "find needs ?pool=P&name=N")
	}
	if err := allow(ctx, RoleRead, pool); err != nil {
		return nil, err
	}
	state, err := s.be.FindContainer(ctx, pool, name)
	if err != nil {
		return nil, err
	}
	if state == nil {
		return nil, apiError(api.CodeContainerNotFound, fmt.Sprintf("pool %s has no container named %s", pool, name))
	}
	return state, nil
}
