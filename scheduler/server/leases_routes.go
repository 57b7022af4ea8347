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
