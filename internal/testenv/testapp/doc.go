// Command testapp is the tiny static program inside the test image
// (berth-test/app). The image is built with `docker import` because tests
// have no registry: there is no shell and no curl inside, so the program is
// its own health probe.
//
// Without arguments it serves HTTP on :8080 (PORT overrides): "/" answers
// with the container's hostname and the MESSAGE environment variable,
// "/healthz" answers 200, "/fetch?url=U" requests U from inside the
// container and relays the answer (what the container's networks reach). With the argument "healthcheck" it requests
// localhost's /healthz and exits 0 when healthy, 1 otherwise, so that
// HEALTHCHECK ["CMD", "/app", "healthcheck"] works. SIGTERM stops it at once,
// keeping container stops and test teardowns fast.
package main
