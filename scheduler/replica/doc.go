// Package replica runs berthd as one of several replicas over etcd: they
// elect one leader with etcd's concurrency package (a session whose lease
// is kept alive by the client, TTL a few seconds), the leader alone runs
// the API's server over a store view fenced by its election key, and the
// others proxy every API call to it, so one URL behind a load balancer
// works. A new leader builds its server from scratch: the ledger comes back
// from etcd and the engines, as at any start.
//
// etcd leases serve the replicas' liveness and the election only; a
// reservation's expiry is an absolute time in its own record.
package replica
