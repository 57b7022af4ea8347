// Package store is berthd's durable store: what the engines cannot hold
// (plan-time leases, idempotency records, pools registered with berthd).
//
// The interface is small and compares revisions: every committed write
// gets a store-wide revision, and a write may require that its key is still
// at the revision the writer read (or absent). Etcd is the replicated one,
// for several berthd replicas: concurrent commits with disjoint keys are
// grouped into one etcd transaction (one quorum round trip), a failed
// guard failing its own commit only, and a Fenced view also requires the
// leader's election key, so that a deposed leader cannot write. Bolt is
// the embedded one: a single file in the data directory, written by one goroutine that commits
// many requests per transaction and per fsync (group commit), and answers a
// request only once its transaction is on disk. Memory is the same contract
// without a disk, for tests and benchmark baselines.
package store
