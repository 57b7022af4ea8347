package api

import (
	"net/url"

	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

// NetworkPath is /v1/pools/{pool}/networks/{name}.
func NetworkPath(pool, name string) string {
	return PoolPath(pool) + "/networks/" + url.PathEscape(name)
}

// NetworkPlanRequest plans a network (PlanNetwork); Current is its state,
// nil for a create.
type NetworkPlanRequest struct {
	Spec    backend.NetworkSpec
	Current *backend.NetworkStatus
}

// NetworkApplyRequest creates or updates a network (ApplyNetwork) as
// planned; Current is its state, nil for a create.
type NetworkApplyRequest struct {
	Planned backend.NetworkStatus
	Current *backend.NetworkStatus
}
