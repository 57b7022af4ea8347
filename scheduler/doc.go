// Package scheduler is Berth's placement core: hosts, requests, filters,
// rankers and reservations that are atomic per host, so that many
// placements run in parallel without a global lock and never overcommit.
// Standard library only: no Terraform, no Docker, no net/http.
//
// A placement runs a pipeline wired in New: feasibility filters (health,
// pinned host, hard constraints, container slots, CPU, memory, host ports,
// max_per_host), a bounded sample of feasible hosts, rankers (soft
// constraints first, then spread, binpack or random), and a compare-and-swap
// of the chosen host's immutable state. A lost swap re-runs the pipeline on
// fresh states, which is what keeps spread exact under concurrency.
//
// Reservations are idempotent by key, move Reserved -> Bound -> Released,
// and carry a lease that never frees capacity without asking the Verifier
// whether the container exists. Restore loads containers observed on the
// engines, so a fresh process sees real usage.
//
// Constraint syntax (see ParseConstraint): `zone == a`, `zone != c`,
// `zone in [a, b]`, `zone not in [c]`, globs (`rack == rack-*`), existence
// (`gpu`, `!gpu`), the pseudo-label node.name, and a leading `~` for a soft
// (preferred) rule.
package scheduler
