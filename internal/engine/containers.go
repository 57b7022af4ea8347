package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"
)

// DockerName is the engine-side name of a Berth container.
func DockerName(pool, name string) string {
	return pool + "." + name
}

// ListContainers returns the Berth containers of pool ("" for every pool) in
// all states, in one list call. Resources and ports come from labels and
// Created is in whole seconds.
func (e *Engine) ListContainers(ctx context.Context, pool string) ([]Container, error) {
	selector := LabelPool
	if pool != "" {
		selector = LabelPool + "=" + pool
	}
	return e.list(ctx, filters.NewArgs(filters.Arg("label", selector)))
}

// ListNamed returns the pool's containers named name (Berth's name, by
// label: normally none or one), as ListContainers does.
func (e *Engine) ListNamed(ctx context.Context, pool, name string) ([]Container, error) {
	return e.list(ctx, filters.NewArgs(filters.Arg("label", LabelPool+"="+pool), filters.Arg("label", LabelName+"="+name)))
}

func (e *Engine) list(ctx context.Context, selection filters.Args) ([]Container, error) {
	var summaries []container.Summary
	err := e.do(ctx, "list containers", 0, func(ctx context.Context) (err error) {
		summaries, err = e.api.ContainerList(ctx, container.ListOptions{All: true, Filters: selection})
		return err
	})
	if err != nil {
		return nil, e.fail("list containers", err)
	}
	containers := make([]Container, 0, len(summaries))
	for _, s := range summaries {
		c := Container{
			ID:      s.ID,
			Image:   s.Image,
			ImageID: s.ImageID,
			Created: time.Unix(s.Created, 0),
			State:   s.State,
			Running: s.State == container.StateRunning,
			Health:  healthFromStatus(s.Status),
		}
		if err := decodeLabels(&c, s.Labels); err != nil {
			_ = e.malformed(s.ID, c.Name, err) // skipped; remembered for a warning
			continue
		}
		c.Retired = len(s.Names) > 0 && retired(s.Names[0], c.Pool, c.Name)
		if s.NetworkSettings != nil {
			c.IPAddress = firstIPAddress(s.NetworkSettings.Networks)
			c.NetworkAddresses = networkAddresses(c.Pool, s.NetworkSettings.Networks)
		}
		containers = append(containers, c)
	}
	return containers, nil
}

// healthFromStatus reads health from the list API's status text ("Up 3
// minutes (healthy)"): API 1.41 has no structured health in lists.
func healthFromStatus(status string) string {
	switch {
	case strings.HasSuffix(status, "(healthy)"):
		return container.Healthy
	case strings.HasSuffix(status, "(unhealthy)"):
		return container.Unhealthy
	case strings.HasSuffix(status, "(health: starting)"):
		return container.Starting
	}
	return ""
}

// firstIPAddress picks by network name so that the answer is stable.
func firstIPAddress(networks map[string]*network.EndpointSettings) string {
	names := make([]string, 0, len(networks))
	for name := range networks {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if ep := networks[name]; ep != nil && ep.IPAddress != "" {
			return ep.IPAddress
		}
	}
	return ""
}

// InspectContainer returns nil, nil when the container does not exist,
// and a *MalformedError when its Berth labels do not parse. Created is exact, and MilliCPU/MemoryBytes are the limits in force, which
// an in-place update changes while the labels stay as created.
func (e *Engine) InspectContainer(ctx context.Context, id string) (*Container, error) {
	resp, err := e.inspect(ctx, id)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil, nil
		}
		return nil, e.fail("inspect container "+id, err)
	}
	return e.containerOf(id, resp)
}

// containerOf converts an inspect answer.
func (e *Engine) containerOf(id string, resp container.InspectResponse) (*Container, error) {
	if resp.ContainerJSONBase == nil || resp.Config == nil || resp.State == nil || resp.HostConfig == nil {
		return nil, fmt.Errorf("engine %s: inspect container %s: incomplete answer", e.name, id)
	}
	c := Container{ID: resp.ID, Image: resp.Config.Image, ImageID: resp.Image}
	if err := decodeLabels(&c, resp.Config.Labels); err != nil {
		return nil, e.malformed(resp.ID, c.Name, err)
	}
	c.Retired = retired(resp.Name, c.Pool, c.Name)
	var err error
	if c.Created, err = time.Parse(time.RFC3339Nano, resp.Created); err != nil {
		return nil, fmt.Errorf("engine %s: container %s: created time %q: %w", e.name, resp.ID, resp.Created, err)
	}
	if c.Command, err = stringsLabel(resp.Config.Labels, LabelCommand); err != nil {
		return nil, e.malformed(resp.ID, c.Name, err)
	}
	envKeys, err := stringsLabel(resp.Config.Labels, LabelEnvKeys)
	if err != nil {
		return nil, e.malformed(resp.ID, c.Name, err)
	}
	c.Env = berthEnv(resp.Config.Env, envKeys)
	if c.Options, err = optionsLabel(resp.Config.Labels); err != nil {
		return nil, fmt.Errorf("engine %s: container %s: %w", e.name, resp.ID, err)
	}
	c.MilliCPU, c.MemoryBytes, c.Limits = reservationAndLimits(resp.HostConfig.Resources)
	if resp.Config.StopTimeout != nil {
		c.StopTimeout = time.Duration(*resp.Config.StopTimeout) * time.Second
	}
	c.Restart = string(resp.HostConfig.RestartPolicy.Name)
	if c.Restart == "" {
		c.Restart = string(container.RestartPolicyDisabled)
	}
	c.State = resp.State.Status
	c.Running = resp.State.Running
	if resp.State.Health != nil {
		c.Health = resp.State.Health.Status
	}
	if hc := resp.Config.Healthcheck; hc != nil && len(hc.Test) > 0 {
		c.Healthcheck = &Healthcheck{Test: hc.Test, Interval: hc.Interval, Timeout: hc.Timeout, Retries: hc.Retries, StartPeriod: hc.StartPeriod}
	}
	if resp.NetworkSettings != nil {
		c.IPAddress = firstIPAddress(resp.NetworkSettings.Networks)
		c.NetworkAddresses = networkAddresses(c.Pool, resp.NetworkSettings.Networks)
	}
	return &c, nil
}

func (e *Engine) inspect(ctx context.Context, id string) (resp container.InspectResponse, err error) {
	err = e.do(ctx, "inspect container "+id, 0, func(ctx context.Context) (err error) {
		resp, err = e.api.ContainerInspect(ctx, id)
		return err
	})
	return resp, err
}

// NVIDIAVisibleDevices is the variable through which the NVIDIA container
// runtime (what `docker run --gpus` uses) gives a container its GPUs.
const NVIDIAVisibleDevices = "NVIDIA_VISIBLE_DEVICES"

// gpuEnv hands the container its GPUs by id.
func gpuEnv(ids []string) []string {
	if len(ids) == 0 {
		return nil
	}
	return []string{NVIDIAVisibleDevices + "=" + strings.Join(ids, ",")}
}

// berthEnv keeps the variables Berth set, leaving out those the image adds.
func berthEnv(env, keys []string) map[string]string {
	if len(keys) == 0 {
		return nil
	}
	values := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		values[k] = v
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		if v, ok := values[k]; ok {
			out[k] = v
		}
	}
	return out
}

// CreateContainer creates (without starting) a Berth container named
// "<pool>.<name>" and returns its id. A name already taken on this engine
// gives an error wrapping ErrNameInUse.
func (e *Engine) CreateContainer(ctx context.Context, spec ContainerSpec) (string, error) {
	if spec.Pool == "" || spec.Name == "" || spec.Image == "" {
		return "", fmt.Errorf("engine %s: create container: pool, name and image are required", e.name)
	}
	if spec.MilliCPU < 0 || spec.MemoryBytes < 0 {
		return "", fmt.Errorf("engine %s: create container %s: negative cpu or memory", e.name, spec.Name)
	}
	exposed, bindings, err := portMaps(spec.Ports)
	if err != nil {
		return "", fmt.Errorf("engine %s: create container %s: %w", e.name, spec.Name, err)
	}
	restart := container.RestartPolicyMode(spec.Restart)
	if restart == "" {
		restart = container.RestartPolicyDisabled
	}
	opts := spec.Options
	config := &container.Config{
		Image:        spec.run(),
		Cmd:          spec.Command,
		Entrypoint:   opts.Entrypoint,
		WorkingDir:   opts.WorkingDir,
		User:         opts.User,
		StopSignal:   opts.StopSignal,
		StopTimeout:  stopSeconds(spec.StopTimeout),
		Env:          append(envList(spec.Env), gpuEnv(spec.GPUIDs)...),
		Labels:       specLabels(spec),
		ExposedPorts: exposed,
	}
	if hc := spec.Healthcheck; hc != nil {
		config.Healthcheck = &container.HealthConfig{
			Test:        hc.Test,
			Interval:    hc.Interval,
			Timeout:     hc.Timeout,
			StartPeriod: hc.StartPeriod,
			Retries:     hc.Retries,
		}
	}
	hostConfig := &container.HostConfig{
		Resources:      limits(spec.MilliCPU, spec.MemoryBytes, spec.Limits),
		PortBindings:   bindings,
		RestartPolicy:  container.RestartPolicy{Name: restart},
		CapAdd:         opts.CapAdd,
		CapDrop:        opts.CapDrop,
		Privileged:     opts.Privileged,
		ReadonlyRootfs: opts.ReadOnly,
		Sysctls:        opts.Sysctls,
		ExtraHosts:     opts.ExtraHosts,
		DNS:            opts.DNS,
		DNSSearch:      opts.DNSSearch,
		ShmSize:        opts.ShmBytes,
	}
	if opts.LogDriver != "" || len(opts.LogOpts) > 0 {
		hostConfig.LogConfig = container.LogConfig{Type: opts.LogDriver, Config: opts.LogOpts}
	}
	if opts.Init {
		hostConfig.Init = &opts.Init
	}
	for _, u := range opts.Ulimits {
		hostConfig.Ulimits = append(hostConfig.Ulimits, &container.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	for _, m := range opts.Mounts {
		hostConfig.Mounts = append(hostConfig.Mounts, dockerMount(m))
	}
	for _, d := range opts.Devices {
		hostConfig.Devices = append(hostConfig.Devices, container.DeviceMapping{
			PathOnHost: d.HostPath, PathInContainer: d.ContainerPath, CgroupPermissions: d.Permissions,
		})
	}
	networking := joinNetworks(spec.Pool, opts.Networks, hostConfig)
	name := DockerName(spec.Pool, spec.Name)
	var created container.CreateResponse
	err = e.do(ctx, "create container "+name, 0, func(ctx context.Context) (err error) {
		created, err = e.api.ContainerCreate(ctx, config, hostConfig, networking, nil, name)
		return err
	})
	if err != nil {
		if cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "already in use") {
			return "", fmt.Errorf("engine %s: create container %s: %w: %w", e.name, name, ErrNameInUse, err)
		}
		return "", e.refused("create container "+name, spec.run(), err)
	}
	if len(opts.Networks) > 1 {
		if err := e.connectNetworks(ctx, created.ID, spec.Pool, opts.Networks[1:]); err != nil {
			// Never started: it holds nothing, and a half-connected
			// container is not what was asked.
			return "", errors.Join(err, e.Remove(ctx, created.ID))
		}
	}
	return created.ID, nil
}

// dockerMount is a Mount in Docker's terms. Binds go through the Mounts
// API, which refuses a missing source instead of creating it: the error
// names the engine and the path.
func dockerMount(m Mount) mount.Mount {
	out := mount.Mount{Type: mount.Type(m.Type), Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly}
	if m.Type == MountTmpfs && (m.SizeBytes > 0 || m.Mode > 0) {
		out.TmpfsOptions = &mount.TmpfsOptions{SizeBytes: m.SizeBytes, Mode: os.FileMode(m.Mode)}
	}
	return out
}

// limits turns Berth's reservation and limits into Docker's resources. The
// limits (the reservation unless set apart) are hard caps; the reservation
// is also written as Docker's soft settings, the memory reservation and the
// CPU shares (1024 per CPU, as Kubernetes maps requests), so that it can be
// read back from the engine after an in-place change, when the labels are
// stale. Both are written on every update: Docker reads a zero as "keep".
// Swap is capped at the memory limit (no swap on top), which also lets
// updates lower or raise memory: Docker refuses a memory limit above the
// current swap limit.
func limits(milliCPU, memoryBytes int64, lim Limits) container.Resources {
	cpuCap, memoryCap := milliCPU, memoryBytes
	if lim.MilliCPU > 0 {
		cpuCap = lim.MilliCPU
	}
	if lim.MemoryBytes > 0 {
		memoryCap = lim.MemoryBytes
	}
	r := container.Resources{
		NanoCPUs:          cpuCap * 1e6,
		CPUShares:         sharesOf(milliCPU),
		Memory:            memoryCap,
		MemoryReservation: memoryBytes,
	}
	if memoryCap > 0 {
		r.MemorySwap = memoryCap
	}
	return r
}

// sharesOf and milliCPUOf convert between millicores and CPU shares; the
// round trip is exact because a share (1/1024 CPU) is finer than a millicore.
func sharesOf(milliCPU int64) int64 { return (milliCPU*1024 + 500) / 1000 }
func milliCPUOf(shares int64) int64 { return (shares*1000 + 512) / 1024 }

// reservationAndLimits reads back what limits wrote. Containers made before
// Berth wrote shares and memory reservations reserve what they are capped at.
func reservationAndLimits(r container.Resources) (milliCPU, memoryBytes int64, lim Limits) {
	milliCPU, memoryBytes = r.NanoCPUs/1e6, r.Memory
	if r.CPUShares > 0 {
		milliCPU = milliCPUOf(r.CPUShares)
	}
	if r.MemoryReservation > 0 {
		memoryBytes = r.MemoryReservation
	}
	if cpuCap := r.NanoCPUs / 1e6; cpuCap != milliCPU {
		lim.MilliCPU = cpuCap
	}
	if r.Memory != memoryBytes {
		lim.MemoryBytes = r.Memory
	}
	return milliCPU, memoryBytes, lim
}

// stopSeconds is Docker's stop timeout in whole seconds (rounded up); nil
// leaves Docker's default.
func stopSeconds(d time.Duration) *int {
	if d <= 0 {
		return nil
	}
	seconds := int(math.Ceil(d.Seconds()))
	return &seconds
}

func envList(env map[string]string) []string {
	list := make([]string, 0, len(env))
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	sort.Strings(list)
	return list
}

func portMaps(ports []PortBinding) (nat.PortSet, nat.PortMap, error) {
	if len(ports) == 0 {
		return nil, nil, nil
	}
	exposed := nat.PortSet{}
	bindings := nat.PortMap{}
	for _, p := range ports {
		proto := p.Protocol
		if proto == "" {
			proto = "tcp"
		}
		port, err := nat.NewPort(proto, strconv.Itoa(p.Internal))
		if err != nil {
			return nil, nil, fmt.Errorf("port %d/%s: %w", p.Internal, proto, err)
		}
		exposed[port] = struct{}{}
		bindings[port] = append(bindings[port], nat.PortBinding{HostIP: p.IP, HostPort: strconv.Itoa(p.External)})
	}
	return exposed, bindings, nil
}

// StartContainer starts a created container.
func (e *Engine) StartContainer(ctx context.Context, id string) error {
	// Starting sets up the container's network and process, which a loaded
	// engine takes much longer to do than to answer: twice the bound.
	err := e.do(ctx, "start container "+id, e.timeout, func(ctx context.Context) error {
		return e.api.ContainerStart(ctx, id, container.StartOptions{})
	})
	if err != nil {
		return e.fail("start container "+id, err)
	}
	return nil
}

// WaitRunning polls until the container runs (and, when healthy is set and
// the container has a healthcheck, until it is healthy). Without a health
// verdict, running means running for runningSettle on this machine's clock,
// so that a program failing at start-up is caught. It fails as soon as the
// container exits, restarts or turns unhealthy, with its state and the tail
// of its log; otherwise it waits until ctx ends. It returns the container as
// last inspected.
func (e *Engine) WaitRunning(ctx context.Context, id string, healthy bool) (*Container, error) {
	const (
		firstPoll     = 50 * time.Millisecond
		mostPoll      = 500 * time.Millisecond
		runningSettle = 100 * time.Millisecond
	)
	wait := firstPoll
	lastSeen := "not inspected yet"
	var runningSince time.Time
	var startedAt string // identifies one run: a restart changes it
	for {
		resp, err := e.inspect(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return nil, e.fail("wait for container "+id, fmt.Errorf("%w (last state: %s)", ctx.Err(), lastSeen))
			}
			return nil, e.fail("wait for container "+id, err)
		}
		if resp.ContainerJSONBase == nil || resp.State == nil {
			return nil, fmt.Errorf("engine %s: wait for container %s: incomplete inspect answer", e.name, id)
		}
		state := resp.State
		name := strings.TrimPrefix(resp.Name, "/")
		health := ""
		if state.Health != nil {
			health = state.Health.Status
		}
		lastSeen = state.Status
		if health != "" {
			lastSeen += ", " + health
		}
		sleep := wait
		switch {
		case state.Status == container.StateExited || state.Status == container.StateDead || state.Restarting:
			return nil, fmt.Errorf("engine %s: container %s (%s) %s with code %d%s%s",
				e.name, name, shortID(id), stoppedVerb(state.Restarting), state.ExitCode,
				suffix("; engine error: ", state.Error), suffix("; last log lines:\n", e.logTail(ctx, id)))
		case healthy && health == container.Unhealthy:
			return nil, fmt.Errorf("engine %s: container %s (%s) is unhealthy%s%s",
				e.name, name, shortID(id), suffix("; last check: ", lastHealthOutput(state.Health)),
				suffix("; last log lines:\n", e.logTail(ctx, id)))
		case state.Running && healthy && health == container.Healthy:
			return e.containerOf(id, resp)
		case state.Running && (!healthy || health == ""):
			if state.StartedAt != startedAt {
				startedAt, runningSince = state.StartedAt, time.Now()
			}
			remaining := runningSettle - time.Since(runningSince)
			if remaining <= 0 {
				return e.containerOf(id, resp)
			}
			// One more look when the settle ends: an exit meanwhile shows
			// as a stopped state, or as another StartedAt after a restart.
			sleep = remaining
		}
		timer := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("engine %s: container %s (%s) not ready: %w (last state: %s)",
				e.name, name, shortID(id), ctx.Err(), lastSeen)
		case <-timer.C:
		}
		wait = min(wait*2, mostPoll)
	}
}

func stoppedVerb(restarting bool) string {
	if restarting {
		return "is restarting: it exited"
	}
	return "exited"
}

func suffix(prefix, text string) string {
	if text == "" {
		return ""
	}
	return prefix + text
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func lastHealthOutput(h *container.Health) string {
	if h == nil || len(h.Log) == 0 || h.Log[len(h.Log)-1] == nil {
		return ""
	}
	last := h.Log[len(h.Log)-1]
	return fmt.Sprintf("exit code %d: %s", last.ExitCode, strings.TrimSpace(last.Output))
}

// logTail is best effort: the failure being reported matters more than a
// failure to fetch its logs.
func (e *Engine) logTail(ctx context.Context, id string) string {
	const lines = 20
	var out bytes.Buffer
	err := e.do(ctx, "container logs "+id, 0, func(ctx context.Context) error {
		stream, err := e.api.ContainerLogs(ctx, id, container.LogsOptions{
			ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(lines),
		})
		if err != nil {
			return err
		}
		defer stream.Close()
		_, err = stdcopy.StdCopy(&out, &out, stream)
		return err
	})
	if err != nil && out.Len() == 0 {
		return ""
	}
	return strings.TrimRight(out.String(), "\n")
}

// Update is what changes on a container in place.
type Update struct {
	MilliCPU    int64 // the reservation
	MemoryBytes int64
	Limits      Limits
	Restart     string // "" keeps the restart policy
}

// Update changes the reservation, the limits and the restart policy of a
// container in place.
func (e *Engine) Update(ctx context.Context, id string, u Update) error {
	if u.MilliCPU < 0 || u.MemoryBytes < 0 || u.Limits.MilliCPU < 0 || u.Limits.MemoryBytes < 0 {
		return fmt.Errorf("engine %s: update container %s: negative cpu or memory", e.name, id)
	}
	err := e.do(ctx, "update container "+id, 0, func(ctx context.Context) error {
		_, err := e.api.ContainerUpdate(ctx, id, container.UpdateConfig{
			Resources:     limits(u.MilliCPU, u.MemoryBytes, u.Limits),
			RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyMode(u.Restart)},
		})
		return err
	})
	if err != nil {
		return e.refused("update container "+id, "", err)
	}
	return nil
}

// StopAndRemove stops the container, giving it timeout to exit, then
// removes it. A container that is already gone is not an error.
func (e *Engine) StopAndRemove(ctx context.Context, id string, timeout time.Duration) error {
	if err := e.Stop(ctx, id, timeout); err != nil && !cerrdefs.IsNotFound(err) {
		return err
	}
	return e.Remove(ctx, id)
}

// Stop stops a container, killing it when it outlives timeout. Stopping a
// stopped container is not an error.
func (e *Engine) Stop(ctx context.Context, id string, timeout time.Duration) error {
	seconds := int(math.Ceil(timeout.Seconds()))
	err := e.do(ctx, "stop container "+id, time.Duration(seconds)*time.Second, func(ctx context.Context) error {
		return e.api.ContainerStop(ctx, id, container.StopOptions{Timeout: &seconds})
	})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return err
		}
		return e.fail("stop container "+id, err)
	}
	return nil
}

// Remove force-removes the container. A container that is already gone is
// not an error.
func (e *Engine) Remove(ctx context.Context, id string) error {
	err := e.do(ctx, "remove container "+id, 0, func(ctx context.Context) error {
		return e.api.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return e.fail("remove container "+id, err)
	}
	return nil
}
