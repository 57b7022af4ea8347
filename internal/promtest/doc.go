// Package promtest reads a Prometheus text exposition in tests: parse it with
// the Prometheus text parser (so a malformed /metrics fails the test) and sum
// the samples of a family that carry some labels.
package promtest
