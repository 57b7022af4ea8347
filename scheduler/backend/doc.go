// Package backend defines what the provider asks of a scheduling backend and
// implements the embedded one: the scheduler core in the provider process,
// with engine verification for safety across processes.
package backend
