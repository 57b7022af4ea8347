// Command etcd is etcd's own server (etcdmain), built from the Go module
// proxy at the version this module pins, for the replicated-berthd tests
// and the failover demo: `go install` cannot build etcd's server module
// directly (its go.mod has replace directives). internal/testenv/etcd.sh
// builds it once and caches the binary.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
