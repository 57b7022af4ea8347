// Package scheduler is Berth's placement core: hosts, requests, filters,
// rankers and reservations that are atomic per host, so that many
// placements run in parallel without a global lock and never overcommit.
// Standard library only: no Terraform, no Docker, no net/http.
package scheduler
