package scheduler

import (
	"context"
	"math/rand/v2"
	"time"
)

// This file is the scheduler's public contract, shared with provider/ and
// scheduler/backend. Keep signatures stable; extend rather than rename.

// Resources is an amount of compute: CPU in millicores, memory in bytes.
type Resources struct {
	MilliCPU    int64
	MemoryBytes int64
}

// PortRange is an inclusive range of host ports the scheduler may hand out
// for requests with External == 0.
type PortRange struct {
	Min, Max int
}

// Host is one schedulable Docker engine of a pool.
type Host struct {
	Name          string
	Labels        map[string]string
	Capacity      Resources
	MaxContainers int       // 0 means unlimited
	Ports         PortRange // zero value means the default range (DefaultPortRange)
	Healthy       bool
	Cordoned      bool // takes nothing new; keeps what it holds
	// DiskBytes is the volume space the host offers. 0 means disk is not
	// accounted there: volumes are counted but any size fits.
	DiskBytes int64
	// Devices is how many countable devices (GPUs) the host offers.
	// DeviceIDs, when set, names them, and then a reservation holds
	// specific ids (Devices is then len(DeviceIDs)).
	Devices   int
	DeviceIDs []string
}

// DefaultPortRange is used when a Host leaves Ports unset.
var DefaultPortRange = PortRange{Min: 30000, Max: 32767}

// PortRequest asks for one published port. External == 0 means "any free
// host port": the scheduler assigns one, distinct per host.
type PortRequest struct {
	Internal int
	External int
	Protocol string // "tcp" (default) or "udp"
}

// PortBinding is an assigned port.
type PortBinding struct {
	Internal int
	External int
	Protocol string
}

// Request is one container that needs a place.
type Request struct {
	Key         string // idempotency key: the same key yields the same live reservation
	Name        string // for explanations
	Resources   Resources
	Ports       []PortRequest
	Constraints []string // constraint expressions, see ParseConstraint
	SpreadGroup string
	MaxPerHost  int    // 0 means unlimited; counted per spread group
	Host        string // pinned host, or "" to let the scheduler choose
	// PinnedBy says why Host is pinned when it is not the user's choice,
	// for explanations: "volume pgdata-0".
	PinnedBy  string
	DiskBytes int64 // volume space to hold
	Devices   int   // countable devices (GPUs) to hold
	// Volume marks a volume: it holds disk and takes no container slot.
	Volume bool
}

// State is a reservation's lifecycle stage.
type State int

const (
	Reserved State = iota // capacity held, no container yet
	Bound                 // a container exists for it
	Released              // capacity returned
)

// Reservation is capacity held on one host for one request.
type Reservation struct {
	ID          string
	Key         string
	Name        string
	Host        string
	Resources   Resources
	Ports       []PortBinding
	SpreadGroup string
	State       State
	ContainerID string
	LeaseExpiry time.Time // zero for bound reservations restored from engines
	DiskBytes   int64
	Devices     int
	DeviceIDs   []string // the devices held, when the host names them
	Volume      bool     // a volume's reservation: no container slot
}

// Strategy names a ranking policy.
type Strategy string

const (
	Spread  Strategy = "spread"
	Binpack Strategy = "binpack"
	Random  Strategy = "random"
)

// Verifier answers whether a container still exists on its host. Lease
// expiry asks it before freeing anything.
type Verifier interface {
	ContainerExists(ctx context.Context, host, containerID string) (bool, error)
}

// Clock is injected so that lease tests need no sleeping.
type Clock interface {
	Now() time.Time
}

// Config wires a Scheduler. Zero values pick sane defaults.
type Config struct {
	Strategy   Strategy
	Clock      Clock      // default: wall clock
	Rand       *rand.Rand // default: seeded from the clock
	SampleSize int        // candidate hosts scored per placement; default 16 (0 = default)
	LeaseTTL   time.Duration
	Verifier   Verifier
}

// Result is one outcome of a batch placement.
type Result struct {
	Reservation Reservation
	Err         error // *NoFitError when nothing fits
}

// HostUsage is a host's capacity and what is held on it.
type HostUsage struct {
	Host       Host
	Reserved   Resources
	Free       Resources
	Containers int
	Ports      []int
	Volumes    int
	DiskBytes  int64    // volume space held
	Devices    int      // devices held
	DeviceIDs  []string // device ids held, sorted
}
