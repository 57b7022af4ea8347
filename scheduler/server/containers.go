package server

import (
	"context"
	"fmt"
	"sync"

	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

func (s *Server) createContainer(ctx context.Context, p params) (any, error) {
	req, err := decode[api.CreateRequest](p.body)
	if err != nil {
		return nil, err
	}
	if err := allow(ctx, RoleDeploy, req.Spec.Pool); err != nil {
		return nil, err
	}
	return s.leases.create(ctx, req)
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

func (s *Server) planResize(ctx context.Context, p params) (any, error) {
	req, err := decode[api.ResizeRequest](p.body)
	if err != nil {
		return nil, err
	}
	if err := allow(ctx, RoleRead, req.Current.Ref.Pool); err != nil {
		return nil, err
	}
	fits, reason, err := s.be.PlanResize(ctx, req.Current, req.Resources)
	if err != nil {
		return nil, err
	}
	return api.PlanResizeResponse{Fits: fits, Reason: reason}, nil
}

func (s *Server) resizeContainer(ctx context.Context, p params) (any, error) {
	req, err := decode[api.ResizeRequest](p.body)
	if err != nil {
		return nil, err
	}
	if err := allow(ctx, RoleDeploy, req.Current.Ref.Pool); err != nil {
		return nil, err
	}
	return s.be.ResizeContainer(ctx, req.Current, req.Resources)
}

func (s *Server) startContainer(ctx context.Context, p params) (any, error) {
	req, err := decode[api.StartRequest](p.body)
	if err != nil {
		return nil, err
	}
	if err := allow(ctx, RoleDeploy, req.Current.Ref.Pool); err != nil {
		return nil, err
	}
	return s.be.StartContainer(ctx, req.Current, req.WaitHealthy)
}

func (s *Server) stopContainer(ctx context.Context, p params) (any, error) {
	req, err := decode[api.StopRequest](p.body)
	if err != nil {
		return nil, err
	}
	if err := allow(ctx, RoleDeploy, req.Current.Ref.Pool); err != nil {
		return nil, err
	}
	return s.be.StopContainer(ctx, req.Current, req.StopTimeout)
}

func (s *Server) deleteContainer(ctx context.Context, p params) (any, error) {
	req, err := decode[api.DeleteRequest](p.body)
	if err != nil {
		return nil, err
	}
	if err := allow(ctx, RoleDeploy, req.Ref.Pool); err != nil {
		return nil, err
	}
	return nil, s.be.DeleteContainer(ctx, req.Ref, req.StopTimeout)
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
