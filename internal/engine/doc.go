// Package engine talks to Docker engines for Berth: connections from the
// provider block (unix, TLS-verified tcp, ssh), Berth's container labels,
// pool records stored on each member engine, and the container lifecycle.
package engine
