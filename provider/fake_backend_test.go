package provider

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

// fakeEngines stands in for the Docker engines during provider tests: it
// outlives provider instances (each Terraform command gets a new one), the
// way real engines do, and places containers naively. Placement quality is
// the scheduler's business and is tested there.
type fakeEngines struct {
	mu          sync.Mutex
	info        engine.Info // what every engine reports
	unreachable map[string]bool
	pools       map[string]backend.PoolSpec
	containers  map[string]*backend.ContainerState // by pool/name
	nextID      int
}

func newFakeEngines() *fakeEngines {
	return &fakeEngines{
		info:        engine.Info{NCPU: 4, MemTotal: 8 << 30, ServerVersion: "28.5.2", APIVersion: "1.51"},
		unreachable: map[string]bool{},
		pools:       map[string]backend.PoolSpec{},
		containers:  map[string]*backend.ContainerState{},
	}
}

// factories returns provider factories whose instances all see these engines.
func (f *fakeEngines) factories() map[string]func() (tfprotov6.ProviderServer, error) {
	newBackend := func(_ context.Context, cfgs []engine.Config, _ backend.Registries) (backend.Backend, error) {
		endpoints := map[string]string{}
		for _, c := range cfgs {
			endpoints[c.Name] = c.Endpoint
		}
		return &fakeBackend{engines: f, endpoints: endpoints}, nil
	}
	return map[string]func() (tfprotov6.ProviderServer, error){
		"berth": NewServer(newWithBackend("test", newBackend)),
	}
}

// fakeBackend is one provider instance's backend over fakeEngines.
type fakeBackend struct {
	engines   *fakeEngines
	endpoints map[string]string
}

var _ backend.Backend = (*fakeBackend)(nil)

func (b *fakeBackend) check(spec backend.PoolSpec) error {
	for _, host := range sortedKeys(spec.Hosts) {
		if b.engines.unreachable[host] {
			return fmt.Errorf("host %s (%s): engine unreachable", host, b.endpoints[host])
		}
	}
	return nil
}

func (b *fakeBackend) status(spec backend.PoolSpec) backend.PoolStatus {
	status := backend.PoolStatus{Spec: spec, Discovered: map[string]engine.Info{}}
	for host := range spec.Hosts {
		status.Discovered[host] = b.engines.info
	}
	return status
}

func (b *fakeBackend) PlanPool(_ context.Context, spec backend.PoolSpec) (backend.PoolStatus, error) {
	b.engines.mu.Lock()
	defer b.engines.mu.Unlock()
	return b.status(spec), b.check(spec)
}

func (b *fakeBackend) ApplyPool(_ context.Context, spec backend.PoolSpec) (backend.PoolStatus, error) {
	b.engines.mu.Lock()
	defer b.engines.mu.Unlock()
	if err := b.check(spec); err != nil {
		return backend.PoolStatus{}, err
	}
	b.engines.pools[spec.Name] = spec
	return b.status(spec), nil
}

func (b *fakeBackend) ReadPool(_ context.Context, name string) (*backend.PoolStatus, error) {
	b.engines.mu.Lock()
	defer b.engines.mu.Unlock()
	spec, ok := b.engines.pools[name]
	if !ok {
		return nil, nil
	}
	status := b.status(spec)
	return &status, nil
}

func (b *fakeBackend) DeletePool(_ context.Context, name string) error {
	b.engines.mu.Lock()
	defer b.engines.mu.Unlock()
	for _, c := range b.engines.containers {
		if c.Ref.Pool == name {
			return fmt.Errorf("pool %s still has containers: %s", name, c.Ref.Name)
		}
	}
	delete(b.engines.pools, name)
	return nil
}

func (b *fakeBackend) capacity(pool, host string) backend.Resources {
	h := b.engines.pools[pool].Hosts[host]
	res := backend.Resources{MilliCPU: h.MilliCPU, MemoryBytes: h.MemoryBytes}
	if res.MilliCPU == 0 {
		res.MilliCPU = int64(b.engines.info.NCPU) * 1000
	}
	if res.MemoryBytes == 0 {
		res.MemoryBytes = b.engines.info.MemTotal
	}
	return res
}

// reserved sums the containers on a host, except one named skip: a create
// of an existing pool/name is its replacement, which frees the old one first.
func (b *fakeBackend) reserved(pool, host, skip string) (res backend.Resources, count int) {
	for _, c := range b.engines.containers {
		if c.Ref.Pool == pool && c.Ref.Host == host && c.Ref.Name != skip {
			res.MilliCPU += c.Resources.MilliCPU
			res.MemoryBytes += c.Resources.MemoryBytes
			count++
		}
	}
	return res, count
}

// place picks the pinned host or the emptiest one that fits.
func (b *fakeBackend) place(spec backend.ContainerSpec) (string, error) {
	pool, ok := b.engines.pools[spec.Pool]
	if !ok {
		return "", fmt.Errorf("pool %q not found", spec.Pool)
	}
	best, bestCount := "", -1
	for _, host := range sortedKeys(pool.Hosts) {
		if spec.Host != "" && host != spec.Host {
			continue
		}
		used, count := b.reserved(spec.Pool, host, spec.Name)
		capacity := b.capacity(spec.Pool, host)
		if used.MilliCPU+spec.Resources.MilliCPU > capacity.MilliCPU || used.MemoryBytes+spec.Resources.MemoryBytes > capacity.MemoryBytes {
			continue
		}
		if bestCount < 0 || count < bestCount {
			best, bestCount = host, count
		}
	}
	if best == "" {
		return "", fmt.Errorf("no host fits %s (needs %dm CPU, %d bytes)", spec.Name, spec.Resources.MilliCPU, spec.Resources.MemoryBytes)
	}
	return best, nil
}

// PlanContainer refuses a name in use, as the embedded backend does: a
// replacement must come through PlanReplacement.
func (b *fakeBackend) PlanContainer(_ context.Context, spec backend.ContainerSpec) (backend.PlanResult, error) {
	b.engines.mu.Lock()
	defer b.engines.mu.Unlock()
	if c, ok := b.engines.containers[spec.Pool+"/"+spec.Name]; ok {
		return backend.PlanResult{}, fmt.Errorf("pool %s already has a container named %s (on %s)", spec.Pool, spec.Name, c.Ref.Host)
	}
	return b.planCreate(spec)
}

func (b *fakeBackend) PlanReplacement(_ context.Context, old backend.ContainerRef, spec backend.ContainerSpec) (backend.PlanResult, error) {
	b.engines.mu.Lock()
	defer b.engines.mu.Unlock()
	if c, ok := b.engines.containers[spec.Pool+"/"+spec.Name]; ok && c.Ref.ContainerID != old.ContainerID {
		return backend.PlanResult{}, fmt.Errorf("replacing %s, but the container there is %s", old.ContainerID, c.Ref.ContainerID)
	}
	return b.planCreate(spec)
}

func (b *fakeBackend) planCreate(spec backend.ContainerSpec) (backend.PlanResult, error) {
	if _, ok := b.engines.pools[spec.Pool]; !ok {
		return backend.PlanResult{}, nil // planned together with its pool
	}
	_, err := b.place(spec)
	return backend.PlanResult{Host: spec.Host}, err
}

func (b *fakeBackend) PlanResize(_ context.Context, current backend.ContainerState, res backend.Resources) (bool, string, error) {
	b.engines.mu.Lock()
	defer b.engines.mu.Unlock()
	used, _ := b.reserved(current.Ref.Pool, current.Ref.Host, "")
	capacity := b.capacity(current.Ref.Pool, current.Ref.Host)
	if used.MemoryBytes-current.Resources.MemoryBytes+res.MemoryBytes > capacity.MemoryBytes {
		return false, "not enough free memory", nil
	}
	if used.MilliCPU-current.Resources.MilliCPU+res.MilliCPU > capacity.MilliCPU {
		return false, "not enough free CPU", nil
	}
	return true, "", nil
}

func (b *fakeBackend) CreateContainer(_ context.Context, spec backend.ContainerSpec) (backend.ContainerState, error) {
	b.engines.mu.Lock()
	defer b.engines.mu.Unlock()
	host, err := b.place(spec)
	if err != nil {
		return backend.ContainerState{}, err
	}
	b.engines.nextID++
	c := &backend.ContainerState{
		Ref:           backend.ContainerRef{Pool: spec.Pool, Name: spec.Name, Host: host, ContainerID: fmt.Sprintf("c%04d", b.engines.nextID), Resources: spec.Resources},
		ReservationID: fmt.Sprintf("r%04d", b.engines.nextID),
		Image:         spec.Image,
		Resources:     spec.Resources,
		SpreadGroup:   spec.SpreadGroup,
		MaxPerHost:    spec.MaxPerHost,
		Constraints:   spec.Constraints,
		Restart:       spec.Restart,
		Command:       spec.Command,
		Env:           spec.Env,
		IPAddress:     fmt.Sprintf("172.17.0.%d", b.engines.nextID+1),
		Address:       "10.0.0." + strings.TrimPrefix(host, "node"),
		Running:       true,
	}
	for i, p := range spec.Ports {
		if p.External == 0 {
			p.External = 30000 + 10*b.engines.nextID + i
		}
		c.Ports = append(c.Ports, engine.PortBinding(p))
	}
	b.engines.containers[spec.Pool+"/"+spec.Name] = c
	return b.copyOf(c), nil
}

// copyOf returns what ReadContainer returns: no command or env (only
// FindContainer reports those).
func (b *fakeBackend) copyOf(c *backend.ContainerState) backend.ContainerState {
	out := *c
	out.Command, out.Env = nil, nil
	return out
}

func (b *fakeBackend) ReadContainer(_ context.Context, ref backend.ContainerRef) (*backend.ContainerState, error) {
	b.engines.mu.Lock()
	defer b.engines.mu.Unlock()
	if b.engines.unreachable[ref.Host] {
		return nil, fmt.Errorf("host %s (%s): engine unreachable", ref.Host, b.endpoints[ref.Host])
	}
	c, ok := b.engines.containers[ref.Pool+"/"+ref.Name]
	if !ok || c.Ref.ContainerID != ref.ContainerID {
		return nil, nil
	}
	out := b.copyOf(c)
	return &out, nil
}

func (b *fakeBackend) ResizeContainer(_ context.Context, current backend.ContainerState, res backend.Resources) (backend.ContainerState, error) {
	return b.change(current, func(c *backend.ContainerState) { c.Resources, c.Ref.Resources = res, res })
}

func (b *fakeBackend) ReconfigureContainer(_ context.Context, current backend.ContainerState, limits backend.Resources, restart string) (backend.ContainerState, error) {
	return b.change(current, func(c *backend.ContainerState) { c.Limits, c.Restart = limits, restart })
}

func (b *fakeBackend) StartContainer(_ context.Context, current backend.ContainerState, _ bool) (backend.ContainerState, error) {
	return b.change(current, func(c *backend.ContainerState) { c.Running = true })
}

func (b *fakeBackend) StopContainer(_ context.Context, current backend.ContainerState, _ time.Duration) (backend.ContainerState, error) {
	return b.change(current, func(c *backend.ContainerState) { c.Running = false })
}

// change applies fn to a stored container, as an engine operation would.
func (b *fakeBackend) change(current backend.ContainerState, fn func(*backend.ContainerState)) (backend.ContainerState, error) {
	b.engines.mu.Lock()
	defer b.engines.mu.Unlock()
	c, ok := b.engines.containers[current.Ref.Pool+"/"+current.Ref.Name]
	if !ok {
		return backend.ContainerState{}, fmt.Errorf("container %s/%s is gone", current.Ref.Pool, current.Ref.Name)
	}
	fn(c)
	return b.copyOf(c), nil
}

func (b *fakeBackend) DeleteContainer(_ context.Context, ref backend.ContainerRef, _ time.Duration) error {
	b.engines.mu.Lock()
	defer b.engines.mu.Unlock()
	delete(b.engines.containers, ref.Pool+"/"+ref.Name)
	return nil
}

func (b *fakeBackend) FindContainer(_ context.Context, pool, name string) (*backend.ContainerState, error) {
	b.engines.mu.Lock()
	defer b.engines.mu.Unlock()
	c, ok := b.engines.containers[pool+"/"+name]
	if !ok {
		return nil, nil
	}
	out := *c
	return &out, nil
}

func (b *fakeBackend) PoolUsage(_ context.Context, name string) (backend.PoolUsage, error) {
	b.engines.mu.Lock()
	defer b.engines.mu.Unlock()
	pool, ok := b.engines.pools[name]
	if !ok {
		return backend.PoolUsage{}, fmt.Errorf("pool %q not found", name)
	}
	usage := backend.PoolUsage{Name: name, Strategy: pool.Strategy}
	for _, host := range sortedKeys(pool.Hosts) {
		capacity := b.capacity(name, host)
		used, count := b.reserved(name, host, "")
		usage.Hosts = append(usage.Hosts, backend.HostUsage{
			Name:          host,
			Labels:        pool.Hosts[host].Labels,
			Capacity:      capacity,
			Reserved:      used,
			Free:          backend.Resources{MilliCPU: capacity.MilliCPU - used.MilliCPU, MemoryBytes: capacity.MemoryBytes - used.MemoryBytes},
			Containers:    count,
			MaxContainers: pool.Hosts[host].MaxContainers,
			Healthy:       !b.engines.unreachable[host],
		})
	}
	return usage, nil
}

// mutate changes the fake engines between test steps (drift).
func (f *fakeEngines) mutate(change func(*fakeEngines)) func() {
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		change(f)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Networks are Docker's business: they are tested on real engines
// (acc_network_test.go); the fake refuses them, so that a unit test that
// reaches them fails loudly.
var errFakeNetworks = fmt.Errorf("the fake engines have no networks: test networks on real engines")

func (b *fakeBackend) PlanNetwork(context.Context, backend.NetworkSpec, *backend.NetworkStatus) (backend.NetworkStatus, error) {
	return backend.NetworkStatus{}, errFakeNetworks
}

func (b *fakeBackend) ApplyNetwork(context.Context, backend.NetworkStatus, *backend.NetworkStatus) (backend.NetworkStatus, error) {
	return backend.NetworkStatus{}, errFakeNetworks
}

func (b *fakeBackend) ReadNetwork(context.Context, string, string) (*backend.NetworkStatus, error) {
	return nil, errFakeNetworks
}

func (b *fakeBackend) DeleteNetwork(context.Context, backend.NetworkStatus) error {
	return errFakeNetworks
}

// ResolveImage answers as for an image built on the engines: it runs as it is.
func (b *fakeBackend) ResolveImage(context.Context, backend.ImageRequest) (string, error) {
	return "", nil
}

// errNoFakeVolumes: no provider unit test uses volumes; they are tested
// against real engines (acceptance).
var errNoFakeVolumes = errors.New("the fake backend has no volumes")

func (b *fakeBackend) PlanVolume(context.Context, backend.VolumeSpec, bool) (backend.PlanResult, error) {
	return backend.PlanResult{}, errNoFakeVolumes
}

func (b *fakeBackend) CreateVolume(context.Context, backend.VolumeSpec) (backend.VolumeState, error) {
	return backend.VolumeState{}, errNoFakeVolumes
}

func (b *fakeBackend) ReadVolume(context.Context, backend.VolumeRef) (*backend.VolumeState, error) {
	return nil, errNoFakeVolumes
}

func (b *fakeBackend) DeleteVolume(context.Context, backend.VolumeRef) error { return errNoFakeVolumes }

func (b *fakeBackend) FindVolume(context.Context, string, string) (*backend.VolumeState, error) {
	return nil, errNoFakeVolumes
}
