package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

// Headers of the contract (see the package documentation).
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderReplay         = "Idempotent-Replay"
	HeaderRequestID      = "X-Request-Id"
	HeaderRetryAfter     = "Retry-After"
)

// Limits and defaults.
const (
	MaxBodyBytes         = 1 << 20 // request bodies; larger ones get 413
	MaxIdempotencyKeyLen = 200
	MaxReadBatch         = 1000 // refs per ReadRequest
	MaxLeaseBatch        = 500  // takes and releases per LeaseBatchRequest
	DefaultLeaseTTL      = 30 * time.Minute
	MaxLeaseTTL          = 7 * 24 * time.Hour
)

// Routes, as net/http patterns (method and path). The server registers
// exactly these; the client builds paths with the helpers below.
const (
	RouteHealthz          = "GET /healthz"
	RoutePoolList         = "GET /v1/pools"
	RoutePoolApply        = "PUT /v1/pools/{pool}"
	RoutePoolPlan         = "POST /v1/pools/{pool}/plan"
	RoutePoolGet          = "GET /v1/pools/{pool}"
	RoutePoolDelete       = "DELETE /v1/pools/{pool}"
	RoutePoolUsage        = "GET /v1/pools/{pool}/usage"
	RouteUsage            = "GET /v1/usage"
	RouteLeaseTake        = "POST /v1/leases"
	RouteLeaseList        = "GET /v1/leases"
	RouteLeaseGet         = "GET /v1/leases/{id}"
	RouteLeaseRelease     = "DELETE /v1/leases/{id}"
	RouteLeaseBatch       = "POST /v1/leases:batch"
	RouteContainerCreate  = "POST /v1/containers"
	RouteContainerRead    = "POST /v1/containers/read"
	RouteContainerPlanRes = "POST /v1/containers/plan-resize"
	RouteContainerResize  = "POST /v1/containers/resize"
	RouteContainerReconf  = "POST /v1/containers/reconfigure"
	RouteContainerStart   = "POST /v1/containers/start"
	RouteContainerStop    = "POST /v1/containers/stop"
	RouteContainerDelete  = "POST /v1/containers/delete"
	RouteContainerFind    = "GET /v1/containers/find"
	RouteNetworkPlan      = "POST /v1/pools/{pool}/networks/{id}/plan"
	RouteNetworkApply     = "PUT /v1/pools/{pool}/networks/{id}"
	RouteNetworkGet       = "GET /v1/pools/{pool}/networks/{id}"
	RouteNetworkDelete    = "POST /v1/pools/{pool}/networks/{id}/delete"
	RouteImageResolve     = "POST /v1/images/resolve"
	RouteVolumePlan       = "POST /v1/volumes/plan"
	RouteVolumeCreate     = "POST /v1/volumes"
	RouteVolumeRead       = "POST /v1/volumes/read"
	RouteVolumeDelete     = "POST /v1/volumes/delete"
	RouteVolumeFind       = "GET /v1/volumes/find"
)

// Routes lists every route above; the server registers each (a test checks).
var Routes = []string{
	RouteHealthz, RoutePoolList, RoutePoolApply, RoutePoolPlan, RoutePoolGet, RoutePoolDelete, RoutePoolUsage, RouteUsage,
	RouteLeaseTake, RouteLeaseList, RouteLeaseGet, RouteLeaseRelease, RouteLeaseBatch,
	RouteContainerCreate, RouteContainerRead, RouteContainerPlanRes, RouteContainerResize, RouteContainerReconf,
	RouteContainerStart, RouteContainerStop, RouteContainerDelete, RouteContainerFind,
	RouteNetworkPlan, RouteNetworkApply, RouteNetworkGet, RouteNetworkDelete,
	RouteImageResolve,
	RouteVolumePlan, RouteVolumeCreate, RouteVolumeRead, RouteVolumeDelete, RouteVolumeFind,
}

// Paths for the client.
const (
	PathHealthz         = "/healthz"
	PathPools           = "/v1/pools"
	PathUsage           = "/v1/usage"
	PathLeases          = "/v1/leases"
	PathLeaseBatch      = "/v1/leases:batch"
	PathContainers      = "/v1/containers"
	PathContainerRead   = "/v1/containers/read"
	PathContainerPlanRs = "/v1/containers/plan-resize"
	PathContainerResize = "/v1/containers/resize"
	PathContainerReconf = "/v1/containers/reconfigure"
	PathContainerStart  = "/v1/containers/start"
	PathContainerStop   = "/v1/containers/stop"
	PathContainerDelete = "/v1/containers/delete"
	PathContainerFind   = "/v1/containers/find"
	PathImageResolve    = "/v1/images/resolve"
	PathVolumes         = "/v1/volumes"
	PathVolumePlan      = "/v1/volumes/plan"
	PathVolumeRead      = "/v1/volumes/read"
	PathVolumeDelete    = "/v1/volumes/delete"
	PathVolumeFind      = "/v1/volumes/find"
)

// PoolPath is /v1/pools/{pool}.
func PoolPath(pool string) string { return PathPools + "/" + url.PathEscape(pool) }

// PoolPlanPath is /v1/pools/{pool}/plan.
func PoolPlanPath(pool string) string { return PoolPath(pool) + "/plan" }

// PoolUsagePath is /v1/pools/{pool}/usage.
func PoolUsagePath(pool string) string { return PoolPath(pool) + "/usage" }

// LeasePath is /v1/leases/{id}.
func LeasePath(id string) string { return PathLeases + "/" + url.PathEscape(id) }

// FindPath is /v1/containers/find?pool=P&name=N.
func FindPath(pool, name string) string {
	return PathContainerFind + "?" + url.Values{"pool": {pool}, "name": {name}}.Encode()
}

// VolumeFindPath is /v1/volumes/find?pool=P&name=N.
func VolumeFindPath(pool, name string) string {
	return PathVolumeFind + "?" + url.Values{"pool": {pool}, "name": {name}}.Encode()
}

// Error codes (see the package documentation for their statuses).
const (
	CodeBadRequest            = "bad_request"
	CodeMissingIdempotencyKey = "missing_idempotency_key"
	CodeUnauthorized          = "unauthorized"
	CodeForbidden             = "forbidden"
	CodeNotFound              = "not_found"
	CodePoolNotFound          = "pool_not_found"
	CodeLeaseNotFound         = "lease_not_found"
	CodeContainerNotFound     = "container_not_found"
	CodeNetworkNotFound       = "network_not_found"
	CodeNetworkInUse          = "network_in_use"
	CodeVolumeNotFound        = "volume_not_found"
	CodeMethodNotAllowed      = "method_not_allowed"
	CodeInFlight              = "in_flight"
	CodeNoFit                 = "no_fit"
	CodeLeaseExpired          = "lease_expired"
	CodeNameInUse             = "name_in_use"
	CodePoolInUse             = "pool_in_use"
	CodeConflict              = "conflict"
	CodeBodyTooLarge          = "body_too_large"
	CodeIdempotencyKeyReused  = "idempotency_key_reused"
	CodeBackend               = "backend_error"
	CodeInternal              = "internal"
	CodeNotReady              = "not_ready"
	CodeShuttingDown          = "shutting_down"
)

// Error is every error response's body.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message + " (" + e.Code + ")" }

// PoolList answers GET /v1/pools.
type PoolList struct {
	Pools []backend.PoolStatus
}

// UsageList answers GET /v1/usage.
type UsageList struct {
	Pools []backend.PoolUsage
}

// LeaseRequest takes or renews the lease of one planned create.
type LeaseRequest struct {
	Spec backend.ContainerSpec `json:",omitzero"`
	// Replaces is the container this create replaces (PlanReplacement).
	Replaces *backend.ContainerRef `json:",omitzero"`
	// TTL is how long an unbound lease holds its capacity (placement_lease);
	// zero means DefaultLeaseTTL.
	TTL time.Duration `json:",omitzero"`
}

// LeaseState is a lease's stage.
type LeaseState string

// Lease states.
const (
	LeaseHeld  LeaseState = "held"  // capacity reserved, no container yet
	LeaseBound LeaseState = "bound" // its container exists
)

// Lease is a plan's placement, held for one create; zero fields stay out
// of its JSON.
type Lease struct {
	ID          string               `json:",omitzero"` // the reservation id; labelled on the container
	Pool        string               `json:",omitzero"`
	Name        string               `json:",omitzero"`
	Fingerprint string               `json:",omitzero"`
	Host        string               `json:",omitzero"`
	Resources   backend.Resources    `json:",omitzero"`
	Ports       []engine.PortBinding `json:",omitzero"` // host ports assigned (External 0 resolved)
	State       LeaseState           `json:",omitzero"`
	ContainerID string               `json:",omitzero"` // when bound
	Holder      string               `json:",omitzero"` // name of the token that took it
	Created     time.Time            `json:",omitzero"`
	Expires     time.Time            `json:",omitzero"`
	Age         time.Duration        `json:",omitzero"` // at the time of the answer
}

// LeaseList answers GET /v1/leases.
type LeaseList struct {
	Leases []Lease
}

// LeaseBatchRequest takes (or renews) and releases several leases in one
// request: a provider coalesces the lease work of its concurrent plans
// into it. Releases run first: their capacity is free for the takes. It
// is one mutating request: one Idempotency-Key, and every
// change it makes commits in one transaction with its answer.
type LeaseBatchRequest struct {
	Take    []LeaseRequest
	Release []string // lease ids
}

// LeaseBatchResponse has one result per Take, in order, then one per
// Release, so that one take that does not fit fails only itself.
type LeaseBatchResponse struct {
	Take    []LeaseResult
	Release []LeaseResult
}

// LeaseResult is one item of a batch: the lease taken (none for a
// release), or the error the item would have had alone, with its status.
type LeaseResult struct {
	Lease  *Lease `json:",omitempty"`
	Error  *Error `json:",omitempty"`
	Status int    `json:",omitempty"` // the HTTP status of Error
}

// CreateRequest creates a container, on its lease's host.
type CreateRequest struct {
	Spec        backend.ContainerSpec
	LeaseID     string // the lease the plan took; "" when none
	PlannedHost string // the host the plan showed; "" when it was unknown
}

// ReadRequest reads several containers at once.
type ReadRequest struct {
	Refs []backend.ContainerRef
}

// ReadResponse has one entry per ref, in order, in each slice: the
// container (null when it is gone or its read failed) and the error of a
// read that failed (null otherwise), so that one engine down fails only
// the reads of its containers.
type ReadResponse struct {
	Containers []*backend.ContainerState
	Errors     []*Error
}

// ResizeRequest asks for (plan-resize) or does (resize) an in-place resize.
type ResizeRequest struct {
	Current   backend.ContainerState
	Resources backend.Resources
}

// ReconfigureRequest changes a container's limits and restart policy in
// place (ReconfigureContainer).
type ReconfigureRequest struct {
	Current backend.ContainerState
	Limits  backend.Resources
	Restart string
}

// PlanResizeResponse answers plan-resize.
type PlanResizeResponse struct {
	Fits   bool
	Reason string // why not, when it does not fit
}

// StartRequest starts a stopped container.
type StartRequest struct {
	Current     backend.ContainerState
	WaitHealthy bool
}

// StopRequest stops a container, keeping it and its capacity.
type StopRequest struct {
	Current     backend.ContainerState
	StopTimeout time.Duration
}

// DeleteRequest stops and removes a container.
type DeleteRequest struct {
	Ref         backend.ContainerRef
	StopTimeout time.Duration
}

// placement is what of a spec decides where it may land: the lease key's
// fingerprint covers exactly this. A field that changes placement (volume
// affinity, devices) belongs here; fields that may be unknown at plan and
// place nothing (image, command, env) do not, so the apply's re-plan finds
// the same lease.
type placement struct {
	Pool        string
	Name        string
	Resources   backend.Resources
	Ports       []backend.PortSpec
	Constraints []string
	SpreadGroup string
	MaxPerHost  int
	Host        string
}

// Fingerprint digests what of spec decides its placement. berthd computes
// it for every lease; clients may compare it with Lease.Fingerprint.
func Fingerprint(spec backend.ContainerSpec) string {
	h := sha256.New()
	// Strings, numbers and slices of them always encode; a hash never fails to write.
	_ = json.NewEncoder(h).Encode(placement{
		Pool: spec.Pool, Name: spec.Name, Resources: spec.Resources, Ports: spec.Ports,
		Constraints: spec.Constraints, SpreadGroup: spec.SpreadGroup, MaxPerHost: spec.MaxPerHost, Host: spec.Host,
	})
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// VolumePlanRequest checks that a new volume fits (berthd holds nothing
// for it: volumes are placed at apply).
type VolumePlanRequest struct {
	Spec      backend.VolumeSpec
	Replacing bool // the volume of that name is destroyed first
}

// VolumeCreateRequest creates a volume.
type VolumeCreateRequest struct {
	Spec backend.VolumeSpec
}

// VolumeRefRequest names an existing volume (read, delete).
type VolumeRefRequest struct {
	Ref backend.VolumeRef
}
