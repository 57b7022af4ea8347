package client

import (
	"context"
	"net/http"

	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

// ResolveImage asks berthd which digest the image's tag names now. berthd
// uses its own registry credentials unless the request carries the
// container's.
func (c *Client) ResolveImage(ctx context.Context, req backend.ImageRequest) (string, error) {
	var answer api.ImageResolveResponse
	err := c.t.do(ctx, http.MethodPost, api.PathImageResolve, "", req, &answer)
	return answer.RepoDigest, err
}
