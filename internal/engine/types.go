package engine

import "time"

// Config is how to reach one engine, as written in the provider block.
type Config struct {
	Name     string
	Endpoint string     // unix://, tcp:// or ssh://
	Address  string     // where published ports are reached; "" derives it from Endpoint
	TLS      *TLSConfig // only for tcp://; verified against CAPEM
	// Timeout bounds each request to the engine; zero means DefaultTimeout.
	Timeout time.Duration
}

// TLSConfig holds PEM material. It lives in the provider block, never in state.
type TLSConfig struct {
	CAPEM   string
	CertPEM string
	KeyPEM  string
}

// Info is what an engine says about itself.
type Info struct {
	NCPU          int
	MemTotal      int64
	ServerVersion string
	APIVersion    string
}

// PortBinding is one published port of a container.
type PortBinding struct {
	Internal int
	External int
	Protocol string
	IP       string // host interface bound; "" binds all of them
}

// Healthcheck mirrors Docker's HEALTHCHECK options.
type Healthcheck struct {
	Test        []string
	Interval    time.Duration
	Timeout     time.Duration
	Retries     int
	StartPeriod time.Duration
}

// RegistryAuth authenticates image pulls.
type RegistryAuth struct {
	ServerAddress string
	Username      string
	Password      string
	IdentityToken string // an OAuth refresh token, as credential helpers may give instead of a password
}

// ContainerSpec is everything needed to create a Berth container.
type ContainerSpec struct {
	Pool          string
	Name          string // Berth name, unique within the pool
	ReservationID string
	// Lease is the berthd lease the create binds ("" without one). It
	// differs from ReservationID once the create picked another host port.
	Lease       string
	Image       string // as configured; a label when it runs by RepoDigest
	RepoDigest  string // "name@sha256:…" to run instead of Image (see ResolveImage); "" runs Image as it is
	Command     []string
	Env         map[string]string
	MilliCPU    int64
	MemoryBytes int64
	Ports       []PortBinding // External already assigned by the scheduler
	SpreadGroup string
	MaxPerHost  int      // recorded in a label, so state can be rebuilt
	Constraints []string // recorded in a label (JSON), so import can restore them
	Restart     string   // no | on-failure | always | unless-stopped
	Healthcheck *Healthcheck
	Limits      Limits        // caps above the reservation; zero: the reservation
	StopTimeout time.Duration // Docker's own stop timeout (docker stop, daemon shutdown); 0: Docker's default
	Options     ContainerOptions
	// GPUIDs are the GPUs the scheduler gave the container: recorded in a
	// label (the ledger) and handed to the NVIDIA runtime the way
	// `docker run --gpus` does, as NVIDIA_VISIBLE_DEVICES.
	GPUIDs []string
}

// Limits caps a container's CPU and memory above what it reserves. A zero
// field means "the reservation".
type Limits struct {
	MilliCPU    int64
	MemoryBytes int64
}

// ContainerOptions are docker_container's settings that Berth hands to
// Docker as they are. They are also recorded in a label (LabelOptions)
// because inspect merges the image's defaults (entrypoint, user, labels)
// into what it shows: import must read back what was asked. Collections
// keep nil apart from empty in that record, so an import restores `[]` as
// `[]` and an unset attribute as unset.
type ContainerOptions struct {
	Entrypoint []string            `json:"entrypoint"`
	WorkingDir string              `json:"working_dir,omitempty"`
	User       string              `json:"user,omitempty"`
	Labels     map[string]string   `json:"labels"`
	LogDriver  string              `json:"log_driver,omitempty"`
	LogOpts    map[string]string   `json:"log_opts"`
	CapAdd     []string            `json:"cap_add"`
	CapDrop    []string            `json:"cap_drop"`
	Privileged bool                `json:"privileged,omitempty"`
	ReadOnly   bool                `json:"read_only,omitempty"`
	Ulimits    []Ulimit            `json:"ulimits"`
	Sysctls    map[string]string   `json:"sysctls"`
	ExtraHosts []string            `json:"extra_hosts"` // "name:ip"
	DNS        []string            `json:"dns"`
	DNSSearch  []string            `json:"dns_search"`
	Devices    []Device            `json:"devices"`
	ShmBytes   int64               `json:"shm_bytes,omitempty"` // 0: Docker's default (64MiB)
	Init       bool                `json:"init,omitempty"`
	StopSignal string              `json:"stop_signal,omitempty"`
	Mounts     []Mount             `json:"mounts"`
	Networks   []NetworkAttachment `json:"networks,omitempty"` // networks of the pool, in order (networks.go)
	// PullTriggers are berth_container's, recorded for import only: Docker
	// never sees them.
	PullTriggers []string `json:"pull_triggers"`
}

// Mount kinds.
const (
	MountBind   = "bind"
	MountTmpfs  = "tmpfs"
	MountVolume = "volume"
)

// Mount is a bind mount of a host path, a named volume or a tmpfs.
type Mount struct {
	Type      string `json:"type"`             // MountBind, MountVolume or MountTmpfs
	Source    string `json:"source,omitempty"` // bind: the host path, which must exist; volume: its name
	Target    string `json:"target"`
	ReadOnly  bool   `json:"read_only,omitempty"`
	SizeBytes int64  `json:"size_bytes,omitempty"` // tmpfs; 0: Docker's default (unlimited)
	Mode      uint32 `json:"mode,omitempty"`       // tmpfs permission bits; 0: Docker's default (1777)
}

// Ulimit is one resource limit, e.g. nofile 1024:4096.
type Ulimit struct {
	Name string `json:"name"`
	Soft int64  `json:"soft"`
	Hard int64  `json:"hard"`
}

// Device maps a host device into the container.
type Device struct {
	HostPath      string `json:"host_path"`
	ContainerPath string `json:"container_path"`
	Permissions   string `json:"permissions"` // r, w and m, e.g. "rwm"
}

// Container is a Berth container as observed on an engine. Resources and
// ports come from its labels; Created is exact (nanoseconds) only when it
// comes from an inspect.
type Container struct {
	ID            string
	Pool          string
	Name          string
	ReservationID string
	Lease         string // the berthd lease its create bound, if any
	Image         string // as configured
	RepoDigest    string // "name@sha256:…" when it was created by digest
	ImageID       string // the image the container runs, "sha256:…"
	MilliCPU      int64
	MemoryBytes   int64
	Ports         []PortBinding
	SpreadGroup   string
	MaxPerHost    int
	Constraints   []string
	GPUIDs        []string
	Restart       string            // from inspect only
	Limits        Limits            // from inspect only
	StopTimeout   time.Duration     // from inspect only
	Options       ContainerOptions  // from inspect only (LabelOptions)
	Healthcheck   *Healthcheck      // from inspect only
	Command       []string          // from inspect only
	Env           map[string]string // from inspect only
	Created       time.Time
	Running       bool
	State         string // created | running | exited | ...
	Health        string // "" when no healthcheck
	IPAddress     string
	// NetworkAddresses: the IPv4 address on each network of the pool, by
	// Berth network name.
	NetworkAddresses map[string]string
	// Retired: its replacement took its name (replacements.go); it holds
	// its capacity until it is removed.
	Retired bool
}

// PoolRecord is the pool's description that berth_pool writes onto every
// member engine, so that any provider process can resolve a pool by name.
type PoolRecord struct {
	Name     string                    `json:"name"`
	Strategy string                    `json:"strategy"`
	Hosts    map[string]PoolRecordHost `json:"hosts"`
	Revision int64                     `json:"revision"` // newest record wins when members disagree
	// Scheduler is the URL of the berthd that manages the pool; empty when
	// provider processes place into it themselves (embedded mode).
	Scheduler string `json:"scheduler,omitempty"`
}

// PoolRecordHost is one member as recorded.
type PoolRecordHost struct {
	Labels        map[string]string `json:"labels"` // null when unset, {} when set empty: imports tell them apart
	MilliCPU      int64             `json:"milli_cpu"`
	MemoryBytes   int64             `json:"memory_bytes"`
	MaxContainers int               `json:"max_containers,omitempty"`
	PortMin       int               `json:"port_min,omitempty"` // range for ports Berth picks
	PortMax       int               `json:"port_max,omitempty"`
	Cordoned      bool              `json:"cordoned,omitempty"`
	Lost          bool              `json:"lost,omitempty"`
	DiskBytes     int64             `json:"disk_bytes,omitempty"` // volume space; 0: not accounted
	GPUs          int               `json:"gpus,omitempty"`
	GPUIDs        []string          `json:"gpu_ids,omitempty"`
	// What the engine reported when the pool was applied; schedulable
	// capacity falls back to it when MilliCPU or MemoryBytes is zero.
	Discovered Info `json:"discovered"`
}
