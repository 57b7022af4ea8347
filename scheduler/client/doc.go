// Package client is the remote scheduling backend: a backend.Backend that
// asks berthd over HTTP. Retries go through go-retryablehttp with jittered
// backoff, only where a repeat is safe (connection errors, 429, 502/503/504
// and 409 for a request still in flight); every mutating request carries an
// Idempotency-Key reused across its retries, so a repeat waits on or replays
// the first attempt and never does the work twice.
package client
