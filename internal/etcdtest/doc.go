// Package etcdtest runs a real etcd cluster on loopback, for the store's
// and the replicas' tests, the failover demo and the benchmarks.
//
// The etcd binary is built from the Go module proxy once and cached by
// internal/testenv/etcd.sh (Binary runs it when BERTH_ETCD does not name
// one). Start launches the members as processes in their own process
// group, each with a data directory, a log and a pid file under one
// directory, so that a cluster left by `etcdcluster up` can be stopped
// later from another process (Attach, then Stop). Members can be stopped,
// killed and restarted one by one to test quorum loss. Every wait is
// bounded.
package etcdtest
