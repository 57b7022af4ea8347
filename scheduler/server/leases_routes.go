package server

import (
	"context"
	"fmt"

	"github.com/berthsh/terraform-provider-berth/scheduler/api"
)

func (s *Server) takeLease() handler {
	return decoded(RoleDeploy, func(r api.LeaseRequest) string { return r.Spec.Pool },
		func(ctx context.Context, req api.LeaseRequest) (any, error) {
			return s.leases.take(ctx, identityOf(ctx).Name, req)
		})
}

func (s *Server) listLeases(ctx context.Context, p params) (any, error) {
	pool := p.query.Get("pool")
	id := identityOf(ctx)
	return api.LeaseList{Leases: s.leases.list(func(l api.Lease) bool {
		return (pool == "" || l.Pool == pool) && id.mayUse(RoleRead, l.Pool)
	})}, nil
}

func (s *Server) getLease(ctx context.Context, p params) (any, error) {
	lease, ok := s.leases.lookup(p.id)
	if !ok {
		return nil, apiError(api.CodeLeaseNotFound, fmt.Sprintf("no held lease %q (bound, released or expired)", p.id))
	}
	if err := allow(ctx, RoleRead, lease.Pool); err != nil {
		return nil, err
	}
	return lease, nil
}

func (s *Server) releaseLease(ctx context.Context, p params) (any, error) {
	if lease, ok := s.leases.lookup(p.id); ok {
		if err := allow(ctx, RoleDeploy, lease.Pool); err != nil {
			return nil, err
		}
	}
	return nil, s.leases.release(ctx, p.id)
}

// leaseBatch runs a batch's releases, then its takes (which may use the
// capacity released), each as it would run alone: its own scope check and its own error. Their writes join the
// batch's one commit with its idempotency record.
func (s *Server) leaseBatch(ctx context.Context, p params) (any, error) {
	req, err := decode[api.LeaseBatchRequest](p.body)
	if err != nil {
		return nil, err
	}
	if n := len(req.Take) + len(req.Release); n > api.MaxLeaseBatch {
		return nil, apiError(api.CodeBadRequest, fmt.Sprintf("%d leases in one batch; at most %d", n, api.MaxLeaseBatch))
	}
	resp := api.LeaseBatchResponse{Take: make([]api.LeaseResult, len(req.Take)), Release: make([]api.LeaseResult, len(req.Release))}
	for i, id := range req.Release {
		if _, err := s.releaseLease(ctx, params{id: id}); err != nil {
			resp.Release[i].Status, resp.Release[i].Error = errorOf(err)
		}
	}
	holder := identityOf(ctx).Name
	for i, take := range req.Take {
		err := allow(ctx, RoleDeploy, take.Spec.Pool)
		if err == nil {
			var lease api.Lease
			if lease, err = s.leases.take(ctx, holder, take); err == nil {
				resp.Take[i].Lease = &lease
			}
		}
		if err != nil {
			resp.Take[i].Status, resp.Take[i].Error = errorOf(err)
		}
	}
	return resp, nil
}
