package backend

import (
	"context"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
)

// Backend is what the provider needs from a scheduling backend. The embedded
// implementation runs the scheduler core in the provider process; a remote
// one (berthd) comes later.
type Backend interface {
	// PlanPool checks at plan time that every member engine answers and
	// remembers the planned spec, so containers planned in the same process
	// can be checked against a pool that does not exist yet.
	PlanPool(ctx context.Context, spec PoolSpec) (PoolStatus, error)
	// ApplyPool checks every member engine, discovers its resources and
	// writes the pool record onto each member. Members removed from the spec
	// must hold no Berth containers of the pool (error lists them).
	ApplyPool(ctx context.Context, spec PoolSpec) (PoolStatus, error)
	// ReadPool resolves a pool by name from the engines; nil when no record.
	ReadPool(ctx context.Context, name string) (*PoolStatus, error)
	// DeletePool removes the records; refused while the pool has containers.
	DeletePool(ctx context.Context, name string) error
	// PoolUsage reports capacity and usage per host (data source).
	PoolUsage(ctx context.Context, name string) (PoolUsage, error)

	// PlanContainer checks at plan time that a new container fits, counting
	// every other create planned by this process once. It returns the host
	// only when pinned; otherwise the host is chosen at apply.
	PlanContainer(ctx context.Context, spec ContainerSpec) (PlanResult, error)
	// PlanReplacement is PlanContainer for the create half of a replacement:
	// the old container's name and capacity are given back first, since
	// its destroy runs before the create.
	PlanReplacement(ctx context.Context, old ContainerRef, spec ContainerSpec) (PlanResult, error)
	// PlanResize checks whether a container can be resized in place.
	PlanResize(ctx context.Context, current ContainerState, res Resources) (bool, string, error)
	// CreateContainer places, creates, verifies, starts and waits.
	CreateContainer(ctx context.Context, spec ContainerSpec) (ContainerState, error)
	// ReadContainer observes a container; nil, nil when it is gone. Reads
	// are batched per engine.
	ReadContainer(ctx context.Context, ref ContainerRef) (*ContainerState, error)
	// ResizeContainer changes CPU/memory in place, atomically with the
	// reservation; the container keeps current.Limits.
	ResizeContainer(ctx context.Context, current ContainerState, res Resources) (ContainerState, error)
	// ReconfigureContainer changes in place what Docker changes on a live
	// container without touching the reservation: the limits and the
	// restart policy.
	ReconfigureContainer(ctx context.Context, current ContainerState, limits Resources, restart string) (ContainerState, error)
	// StartContainer starts a stopped container and waits for it.
	StartContainer(ctx context.Context, current ContainerState, waitHealthy bool) (ContainerState, error)
	// StopContainer stops a container and keeps it, with its capacity:
	// a stopped container still holds its place on the host.
	StopContainer(ctx context.Context, current ContainerState, stopTimeout time.Duration) (ContainerState, error)
	// DeleteContainer stops (within timeout) and removes it, releasing capacity.
	DeleteContainer(ctx context.Context, ref ContainerRef, stopTimeout time.Duration) error
	// FindContainer looks a container up by pool and name (import).
	FindContainer(ctx context.Context, pool, name string) (*ContainerState, error)

	// PlanNetwork gives the network a place on every host of its pool
	// (networks.go): hosts of current keep theirs.
	PlanNetwork(ctx context.Context, spec NetworkSpec, current *NetworkStatus) (NetworkStatus, error)
	// ApplyNetwork creates the network where planned lacks an id and
	// removes it from the hosts of current that planned no longer lists.
	ApplyNetwork(ctx context.Context, planned NetworkStatus, current *NetworkStatus) (NetworkStatus, error)
	// ReadNetwork observes the network on its pool's hosts; nil when no
	// host has it.
	ReadNetwork(ctx context.Context, pool, name string) (*NetworkStatus, error)
	// DeleteNetwork removes it from every host of current; refused while
	// containers use it.
	DeleteNetwork(ctx context.Context, current NetworkStatus) error

	// ResolveImage returns the digest an image's tag names now
	// ("name@sha256:…"; "" for an image built on the engines), asking the
	// registry through an engine of the pool, without pulling.
	ResolveImage(ctx context.Context, req ImageRequest) (string, error)
	// PlanVolume checks at plan time that a new volume fits, like
	// PlanContainer; replacing gives the existing volume of that name back
	// first (its destroy runs before the create).
	PlanVolume(ctx context.Context, spec VolumeSpec, replacing bool) (PlanResult, error)
	// CreateVolume places the volume and creates it on its host.
	CreateVolume(ctx context.Context, spec VolumeSpec) (VolumeState, error)
	// ReadVolume observes a volume; nil, nil when it is gone.
	ReadVolume(ctx context.Context, ref VolumeRef) (*VolumeState, error)
	// DeleteVolume removes a volume; refused while a container mounts it.
	DeleteVolume(ctx context.Context, ref VolumeRef) error
	// FindVolume looks a volume up by pool and name (import).
	FindVolume(ctx context.Context, pool, name string) (*VolumeState, error)
}

// VolumeSpec is berth_volume's configuration.
type VolumeSpec struct {
	Pool        string
	Name        string // also the Docker volume's name on its host
	Driver      string
	DriverOpts  map[string]string
	Labels      map[string]string
	SizeBytes   int64 // reserved against the host's disk; 0: none
	SpreadGroup string
	Constraints []string
	Host        string // pinned, or ""
}

// VolumeRef identifies an existing volume from state alone.
type VolumeRef struct {
	Pool string
	Name string
	Host string
}

// VolumeState is a volume as created or observed.
type VolumeState struct {
	Spec          VolumeSpec // Host: where it lives
	ReservationID string
}

// Resources is an amount of CPU (millicores) and memory (bytes).
type Resources struct {
	MilliCPU    int64
	MemoryBytes int64
}

// PoolSpec is berth_pool's configuration.
type PoolSpec struct {
	Name     string
	Strategy string
	Hosts    map[string]PoolHostSpec
}

// PoolHostSpec is one member; zero CPU or memory means "what the engine has".
type PoolHostSpec struct {
	Labels        map[string]string
	MilliCPU      int64
	MemoryBytes   int64
	MaxContainers int
	PortMin       int  // range of host ports Berth picks from (external = 0);
	PortMax       int  // zero means scheduler.DefaultPortRange
	Cordoned      bool // takes no new containers; keeps what runs there
	// DiskBytes is the volume space volumes' sizes are held against; zero
	// means disk is not accounted on this host (any size fits).
	DiskBytes int64
	// GPUs is how many GPUs containers may reserve; GPUIDs, when set,
	// names them (and GPUs is then their number).
	GPUs   int
	GPUIDs []string
	// Lost: the engine is gone for good. Nothing asks it any more, the
	// pool's containers on it read as gone (so their resources plan a
	// re-create elsewhere) and delete as done, and the host can then be
	// removed from the pool. Implies Cordoned.
	Lost bool
}

// notLost keeps the hosts the spec does not mark lost.
func (s PoolSpec) notLost(hosts []string) []string {
	kept := make([]string, 0, len(hosts))
	for _, host := range hosts {
		if !s.Hosts[host].Lost {
			kept = append(kept, host)
		}
	}
	return kept
}

// spared reports whether a member may fail to answer without failing the
// pool: a cordoned or lost host takes nothing new, so its capacity is not
// needed, and a dead engine can then be cordoned and written off.
func (h PoolHostSpec) spared() bool {
	return h.Cordoned || h.Lost
}

// PoolStatus is a pool as applied, with what was discovered per host.
type PoolStatus struct {
	Spec       PoolSpec
	Discovered map[string]engine.Info
	// Scheduler is the URL of the berthd the pool is registered with, ""
	// in embedded mode.
	Scheduler string
}

// PoolUsage is capacity and usage per host.
type PoolUsage struct {
	Name     string
	Strategy string
	Hosts    []HostUsage
}

// HostUsage is one host's line of PoolUsage.
type HostUsage struct {
	Name          string
	Labels        map[string]string
	Capacity      Resources
	Reserved      Resources
	Free          Resources
	Containers    int
	MaxContainers int
	Healthy       bool
	Volumes       int
	DiskBytes     int64    // declared volume space; 0: not accounted
	DiskReserved  int64    // held by volumes' sizes
	DiskFree      int64    // DiskBytes less DiskReserved, never below 0
	GPUs          int      // declared GPUs
	GPUsReserved  int      // held by containers
	GPUsFree      int      // GPUs less GPUsReserved, never below 0
	GPUIDs        []string // declared GPU ids, when named
	GPUIDsHeld    []string // of those, the ones containers hold
}

// PortSpec is one requested port; External 0 lets Berth pick.
type PortSpec struct {
	Internal int
	External int
	Protocol string
	IP       string // host interface to bind; "" binds all of them
}

// ContainerSpec is berth_container's configuration. Zero fields stay out of
// its JSON (omitzero): most are zero, and berthd gets one spec per lease.
type ContainerSpec struct {
	Pool         string                  `json:",omitzero"`
	Name         string                  `json:",omitzero"`
	Image        string                  `json:",omitzero"`
	RepoDigest   string                  `json:",omitzero"` // "name@sha256:…" (ResolveImage): the image run and pulled; "" runs Image
	Command      []string                `json:",omitzero"`
	Env          map[string]string       `json:",omitzero"`
	Resources    Resources               `json:",omitzero"`
	Ports        []PortSpec              `json:",omitzero"`
	Constraints  []string                `json:",omitzero"`
	SpreadGroup  string                  `json:",omitzero"`
	MaxPerHost   int                     `json:",omitzero"`
	Restart      string                  `json:",omitzero"`
	Host         string                  `json:",omitzero"` // pinned, or ""
	Healthcheck  *engine.Healthcheck     `json:",omitzero"`
	RegistryAuth *engine.RegistryAuth    `json:",omitzero"`
	StopTimeout  time.Duration           `json:",omitzero"`
	Limits       Resources               `json:",omitzero"` // caps above Resources; zero fields: the reservation
	Options      engine.ContainerOptions `json:",omitzero"`
	GPUs         int                     `json:",omitzero"` // GPUs to reserve; the container gets specific ids
	// lease is the berthd lease a create binds, set by CreateOnLease: the
	// container is labelled with it, so that a create cut short by a crash
	// finds its container even after it picked another host port.
	lease string
}

// PlanResult is the outcome of a plan-time check.
type PlanResult struct {
	Host string // set only when the container is pinned
	// Warnings name containers on the pool's engines that were skipped
	// because their Berth labels are malformed.
	Warnings []string
}

// ContainerRef identifies an existing container from state alone.
type ContainerRef struct {
	Pool        string
	Name        string
	Host        string
	ContainerID string
	// Resources as last recorded in state. Labels cannot change after an
	// in-place resize, so a mismatch makes Read inspect the real limits.
	Resources Resources
}

// ContainerState is a container as created or observed.
type ContainerState struct {
	Ref           ContainerRef
	ReservationID string
	Image         string
	Resources     Resources
	Ports         []engine.PortBinding
	SpreadGroup   string
	MaxPerHost    int
	Constraints   []string
	Restart       string
	Command       []string            // set by FindContainer (import); nil otherwise
	Env           map[string]string   // set by FindContainer (import); nil otherwise
	Healthcheck   *engine.Healthcheck // set by FindContainer (import); nil otherwise
	Limits        Resources           // as created or changed in place; read back by FindContainer (import)
	StopTimeout   time.Duration       // Docker's; set by FindContainer (import)
	Options       engine.ContainerOptions
	IPAddress     string
	Running       bool
	Health        string
	Warnings      []string // as in PlanResult, for the container's engine; set by reads
	Address       string   // where the host's published ports are reached (the engine's address)
	ImageID       string   // the image the container runs, "sha256:…"
	// NetworkAddresses: the IPv4 address on each network of the pool, by
	// network name; none while stopped.
	NetworkAddresses map[string]string
	RepoDigest       string   // "name@sha256:…" when created by digest
	GPUIDs           []string // the GPUs it holds
}
