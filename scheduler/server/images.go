package server

import (
	"context"

	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

// resolveImage asks the registry, through an engine of the pool, which
// digest a tag names now. It changes nothing, but it talks to registries
// with berthd's credentials, so it needs the deploy role on the pool.
func (s *Server) resolveImage() handler {
	return decoded(RoleDeploy, func(r backend.ImageRequest) string { return r.Pool },
		func(ctx context.Context, req backend.ImageRequest) (any, error) {
			digest, err := s.be.ResolveImage(ctx, req)
			if err != nil {
				return nil, err
			}
			return api.ImageResolveResponse{RepoDigest: digest}, nil
		})
}
