package client

import (
	"context"
	"net/http"

	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

// PlanNetwork asks berthd where the network goes (hosts and slices).
func (c *Client) PlanNetwork(ctx context.Context, spec backend.NetworkSpec, current *backend.NetworkStatus) (backend.NetworkStatus, error) {
	var status backend.NetworkStatus
	err := c.t.do(ctx, http.MethodPost, api.NetworkPath(spec.Pool, spec.Name)+"/plan", newKey("plan-network"),
		api.NetworkPlanRequest{Spec: spec, Current: current}, &status)
	return status, err
}

// ApplyNetwork has berthd create the network where planned lacks it.
func (c *Client) ApplyNetwork(ctx context.Context, planned backend.NetworkStatus, current *backend.NetworkStatus) (backend.NetworkStatus, error) {
	var status backend.NetworkStatus
	err := c.t.do(ctx, http.MethodPut, api.NetworkPath(planned.Spec.Pool, planned.Spec.Name), newKey("apply-network"),
		api.NetworkApplyRequest{Planned: planned, Current: current}, &status)
	return status, err
}

// ReadNetwork returns nil, nil when no engine of berthd has the network.
func (c *Client) ReadNetwork(ctx context.Context, pool, name string) (*backend.NetworkStatus, error) {
	var status backend.NetworkStatus
	err := c.t.do(ctx, http.MethodGet, api.NetworkPath(pool, name), "", nil, &status)
	if isCode(err, api.CodeNetworkNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &status, nil
}

// DeleteNetwork removes the network; berthd refuses while containers use it.
func (c *Client) DeleteNetwork(ctx context.Context, current backend.NetworkStatus) error {
	return c.t.do(ctx, http.MethodPost, api.NetworkPath(current.Spec.Pool, current.Spec.Name)+"/delete", newKey("delete-network"), current, nil)
}
