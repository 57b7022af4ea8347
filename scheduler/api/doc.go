// Package api is berthd's wire contract, shared by scheduler/server and
// scheduler/client. This file is the reference a client needs.
//
// # Encoding
//
// Bodies are JSON (Content-Type: application/json). Request and response
// bodies reuse the scheduler/backend types (backend.PoolSpec,
// backend.ContainerSpec, backend.ContainerState, ...) without JSON tags, so
// field names are the Go field names ("Pool", "Resources": {"MilliCPU": 500,
// ...}) and a field added to a backend type travels through berthd with no
// change here. Durations (time.Duration) are integer nanoseconds; times are
// RFC 3339. Unknown fields are rejected (400 bad_request); bodies larger
// than MaxBodyBytes get 413 body_too_large.
//
// # Headers
//
//	Authorization: Bearer <token>   every /v1 request (401 unauthorized without it)
//	Idempotency-Key: <opaque, 1..200 chars>
//	                                every mutating request (POST, PUT, DELETE) except
//	                                the read-only POSTs marked (ro) below; missing: 400
//	                                missing_idempotency_key. Keys are scoped to the token.
//	Idempotent-Replay: true         on a response that repeats the first answer to the key
//	X-Request-Id                    echoed when sent, generated otherwise; in berthd's logs
//	Retry-After: <seconds>          with 409 in_flight and 503 (not_ready, shutting_down)
//
// Idempotency: the first answer to a key is stored durably with a digest of
// the request (method, path, body). A repeat with the same request gets that
// answer again, with Idempotent-Replay: true. The same key with another
// request gets 422 idempotency_key_reused. A repeat while the first is still
// running waits for it a few seconds, then gets 409 in_flight with
// Retry-After; the operation itself runs on in berthd even when the client
// has gone, so retrying with the same key is always safe and never creates
// a second container. A client should retry connection errors, 429, 502,
// 503, 504 and 409 in_flight, with the same key; nothing else.
//
// # Errors
//
// Every error is {"code": "...", "message": "..."} (type Error) with one of
// the stable codes below; the message is for humans and may change.
//
//	400 bad_request              malformed JSON, unknown field, invalid value
//	400 missing_idempotency_key
//	401 unauthorized             no token or a wrong one (says nothing about pools)
//	403 forbidden                role or pool scope does not allow it
//	404 not_found                no such route
//	404 pool_not_found
//	404 lease_not_found
//	404 container_not_found
//	404 network_not_found
//	405 method_not_allowed
//	409 in_flight                same key still running; retry after Retry-After
//	409 no_fit                   no host fits; message explains per host
//	409 lease_expired            the plan's host can no longer take it: plan again
//	409 name_in_use              the pool already has a container of that name
//	409 pool_in_use              pool still holds containers (delete, host removal)
//	409 network_in_use           containers still use the network (delete, host removal)
//	409 conflict                 the container moved or is gone since the state was read
//	413 body_too_large
//	422 idempotency_key_reused   same key, different request
//	500 backend_error            an engine or Docker refused or failed; message says what
//	500 internal                 a bug in berthd (logged with the request id)
//	503 not_ready                store or ledger still loading
//	503 shutting_down
//
// # Routes
//
// Roles: admin (everything), deploy (leases, containers and networks in its pools,
// reads of its pools), read (GET routes and the (ro) POSTs). A token without
// pools is not restricted to pools.
//
//	GET    /healthz                          200 once the store is open and the ledger rebuilt (no auth)
//	GET    /v1/pools                         read    PoolList (the pools this token may see)
//	PUT    /v1/pools/{pool}                  admin   backend.PoolSpec -> backend.PoolStatus (create or update: ApplyPool)
//	POST   /v1/pools/{pool}/plan             admin   backend.PoolSpec -> backend.PoolStatus (PlanPool: checks, remembers nothing)
//	GET    /v1/pools/{pool}                  read    backend.PoolStatus, or 404 pool_not_found (ReadPool)
//	DELETE /v1/pools/{pool}                  admin   204, or 409 pool_in_use (DeletePool)
//	GET    /v1/pools/{pool}/usage            read    backend.PoolUsage (PoolUsage)
//	GET    /v1/usage                         read    UsageList: every pool this token may see
//
//	POST   /v1/pools/{pool}/networks/{name}/plan   deploy  NetworkPlanRequest -> backend.NetworkStatus (PlanNetwork)
//	PUT    /v1/pools/{pool}/networks/{name}        deploy  NetworkApplyRequest -> backend.NetworkStatus (ApplyNetwork)
//	GET    /v1/pools/{pool}/networks/{name}        read    backend.NetworkStatus, or 404 network_not_found (ReadNetwork)
//	POST   /v1/pools/{pool}/networks/{name}/delete deploy  backend.NetworkStatus -> 204, or 409 network_in_use (DeleteNetwork)
//
//	POST   /v1/leases                        deploy  LeaseRequest -> Lease (take or renew; PlanContainer/PlanReplacement)
//	GET    /v1/leases[?pool=P]               read    LeaseList: live leases, with holder and age
//	GET    /v1/leases/{id}                   read    Lease, or 404 lease_not_found
//	DELETE /v1/leases/{id}                   deploy  204: releases an unbound lease's capacity
//	POST   /v1/leases:batch                  deploy  LeaseBatchRequest -> LeaseBatchResponse (takes and releases, one result each)
//
//	POST   /v1/containers                    deploy  CreateRequest -> backend.ContainerState (201; CreateContainer)
//	POST   /v1/containers/read          (ro) read    ReadRequest -> ReadResponse (batched ReadContainer)
//	POST   /v1/containers/plan-resize   (ro) read    ResizeRequest -> PlanResizeResponse (PlanResize)
//	POST   /v1/containers/resize             deploy  ResizeRequest -> backend.ContainerState
//	POST   /v1/containers/reconfigure        deploy  ReconfigureRequest -> backend.ContainerState (ReconfigureContainer)
//	POST   /v1/containers/start              deploy  StartRequest -> backend.ContainerState
//	POST   /v1/containers/stop               deploy  StopRequest -> backend.ContainerState
//	POST   /v1/containers/delete             deploy  DeleteRequest -> 204
//	GET    /v1/containers/find?pool=P&name=N read    backend.ContainerState, or 404 container_not_found (FindContainer)
//
// # Leases
//
// A plan takes a lease per create: POST /v1/leases with the spec. The lease
// key is (pool, name, Fingerprint(spec)); the same key returns the same
// lease, on the same host, renewed to now+TTL (default DefaultLeaseTTL).
// The lease reserves the capacity in berthd's one scheduling core, so
// Lease.Host (and Lease.Ports) are what the plan shows. A lease is held by
// the token that took it (Lease.Holder).
//
// The apply's create names the lease (CreateRequest.LeaseID) and the host
// the plan showed (CreateRequest.PlannedHost). berthd binds the lease: it
// creates the container on exactly that host. When the lease has expired and
// its capacity was freed, berthd takes it again on PlannedHost if it still
// fits there; otherwise 409 lease_expired asks for a new plan. A create is
// never placed on a host other than PlannedHost. Without LeaseID and
// PlannedHost (the host was unknown at plan), berthd places the create
// itself, like the embedded backend.
//
// A lease that runs out frees its capacity only after the engine confirms
// that no container carries its reservation id (Lease.ID is the reservation
// id, labelled on the container). A bound lease lives as long as its
// container. The create half of a replacement (LeaseRequest.Replaces) is
// reserved next to the container it replaces: capacity is not counted twice
// once the old container is deleted, but at plan time both are held.
package api
