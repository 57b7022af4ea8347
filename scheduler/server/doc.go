// Package server is berthd's HTTP API (the contract is scheduler/api): the
// embedded backend, shared by every client, plus plan-time leases, scoped
// tokens and idempotency records kept in a durable store.
//
// Routes live in one place (routes.go). Every request goes through one
// middleware chain (request id, structured log, recover, body limit);
// each route states the role it needs, and mutating routes run through the
// idempotency records (idempotency.go): the operation runs detached from
// the connection, so a client that goes away does not cut a create short,
// and a repeat with the same key waits for it instead of doing it twice.
package server
