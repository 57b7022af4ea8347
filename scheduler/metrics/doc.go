// Package metrics is berthd's /metrics, in Prometheus format through the
// Prometheus Go client: an HTTP middleware (latency by route and code,
// placements by pool and result, rejections by reason, idempotent
// replays), a Store decorator (commit latency, ops per commit, conflicts),
// a collector of the leases held in the store, and leader changes.
// Names carry base units and counters end in _total; no label ever holds
// a lease id, a key or a container name, so the series stay few.
package metrics
