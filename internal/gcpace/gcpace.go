package gcpace

import (
	"os"
	"runtime/debug"
)

// Percent is the heap growth between collections: 4x the live data. Both
// binaries allocate heavily per request (the plugin framework per RPC,
// berthd's JSON per lease) over small live heaps. At Go's default (100),
// collection was about 30% of the provider's CPU in a plan refreshing 300
// containers (2.1 s -> 1.5 s of CPU, peak RSS 76 -> 151 MB), and berthd's
// placements per second rose 15% at 400 (make bench).
const Percent = 400

// UnlessSet applies Percent unless GOGC is set.
func UnlessSet() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(Percent)
	}
}
