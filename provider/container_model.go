package provider

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

// ContainerResourceModel is berth_container's configuration and state.
type ContainerResourceModel struct {
	ID               types.String   `tfsdk:"id"`
	Pool             types.String   `tfsdk:"pool"`
	Name             types.String   `tfsdk:"name"`
	Image            types.String   `tfsdk:"image"`
	PullTriggers     types.List     `tfsdk:"pull_triggers"`
	Command          types.List     `tfsdk:"command"`
	Env              types.Map      `tfsdk:"env"`
	CPU              types.Float64  `tfsdk:"cpu"`
	Memory           types.String   `tfsdk:"memory"`
	GPUs             types.Int64    `tfsdk:"gpus"`
	GPUIDs           types.List     `tfsdk:"gpu_ids"` // computed
	Ports            types.List     `tfsdk:"ports"`   // of portModel
	Constraints      types.List     `tfsdk:"constraints"`
	SpreadGroup      types.String   `tfsdk:"spread_group"`
	MaxPerHost       types.Int64    `tfsdk:"max_per_host"`
	Restart          types.String   `tfsdk:"restart"`
	Host             types.String   `tfsdk:"host"`
	Healthcheck      types.Object   `tfsdk:"healthcheck"`   // healthcheckModel
	RegistryAuth     types.Object   `tfsdk:"registry_auth"` // registryAuthModel
	Running          types.Bool     `tfsdk:"running"`
	StopTimeout      types.String   `tfsdk:"stop_timeout"`
	Entrypoint       types.List     `tfsdk:"entrypoint"`
	WorkingDir       types.String   `tfsdk:"working_dir"`
	User             types.String   `tfsdk:"user"`
	Labels           types.Map      `tfsdk:"labels"`
	LogDriver        types.String   `tfsdk:"log_driver"`
	LogOpts          types.Map      `tfsdk:"log_opts"`
	Capabilities     types.Object   `tfsdk:"capabilities"` // capabilitiesModel
	Privileged       types.Bool     `tfsdk:"privileged"`
	ReadOnly         types.Bool     `tfsdk:"read_only"`
	Init             types.Bool     `tfsdk:"init"`
	Ulimits          types.List     `tfsdk:"ulimits"` // of ulimitModel
	Sysctls          types.Map      `tfsdk:"sysctls"`
	ExtraHosts       types.List     `tfsdk:"extra_hosts"`
	DNS              types.List     `tfsdk:"dns"`
	DNSSearch        types.List     `tfsdk:"dns_search"`
	Devices          types.List     `tfsdk:"devices"` // of deviceModel
	ShmSize          types.String   `tfsdk:"shm_size"`
	StopSignal       types.String   `tfsdk:"stop_signal"`
	MemoryLimit      types.String   `tfsdk:"memory_limit"`
	CPULimit         types.Float64  `tfsdk:"cpu_limit"`
	Mounts           types.List     `tfsdk:"mounts"`            // of mountModel
	Networks         types.List     `tfsdk:"networks"`          // of networkModel
	NetworkAddresses types.Map      `tfsdk:"network_addresses"` // computed
	Timeouts         timeouts.Value `tfsdk:"timeouts"`
	ContainerID      types.String   `tfsdk:"container_id"`
	IPAddress        types.String   `tfsdk:"ip_address"`
	Address          types.String   `tfsdk:"address"`
	ImageID          types.String   `tfsdk:"image_id"`
	RepoDigest       types.String   `tfsdk:"repo_digest"`
	PublishedPorts   types.List     `tfsdk:"published_ports"` // of publishedPortModel
	ReservationID    types.String   `tfsdk:"reservation_id"`
}

// portModel is one entry of ports.
type portModel struct {
	Internal types.Int64  `tfsdk:"internal"`
	External types.Int64  `tfsdk:"external"`
	Protocol types.String `tfsdk:"protocol"`
	IP       types.String `tfsdk:"ip"`
}

// publishedPortModel is one entry of published_ports.
type publishedPortModel struct {
	Internal types.Int64  `tfsdk:"internal"`
	External types.Int64  `tfsdk:"external"`
	Protocol types.String `tfsdk:"protocol"`
	IP       types.String `tfsdk:"ip"`
	Address  types.String `tfsdk:"address"`
}

type healthcheckModel struct {
	Test        types.List   `tfsdk:"test"`
	Interval    types.String `tfsdk:"interval"`
	Timeout     types.String `tfsdk:"timeout"`
	StartPeriod types.String `tfsdk:"start_period"`
	Retries     types.Int64  `tfsdk:"retries"`
}

type registryAuthModel struct {
	ServerAddress types.String `tfsdk:"server_address"`
	Username      types.String `tfsdk:"username"`
	Password      types.String `tfsdk:"password"`
}

var (
	portObjectType = types.ObjectType{AttrTypes: map[string]attr.Type{
		"internal": types.Int64Type,
		"external": types.Int64Type,
		"protocol": types.StringType,
		"ip":       types.StringType,
	}}
	publishedPortObjectType = types.ObjectType{AttrTypes: map[string]attr.Type{
		"internal": types.Int64Type,
		"external": types.Int64Type,
		"protocol": types.StringType,
		"ip":       types.StringType,
		"address":  types.StringType,
	}}
	timeoutsAttrTypes = map[string]attr.Type{"create": types.StringType, "update": types.StringType, "delete": types.StringType}
	healthcheckTypes  = map[string]attr.Type{"test": types.ListType{ElemType: types.StringType}, "interval": types.StringType, "timeout": types.StringType, "start_period": types.StringType, "retries": types.Int64Type}
	registryAuthTypes = map[string]attr.Type{"server_address": types.StringType, "username": types.StringType, "password": types.StringType}
	replaceIfChanged  = []planmodifier.String{stringplanmodifier.RequiresReplace()}
	keepStableString  = []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
)

// replacesExisting reports whether an attribute that forces replacement
// changed; then the new size is checked as a create, not as a resize.
func (m ContainerResourceModel) replacesExisting(state ContainerResourceModel) bool {
	pairs := [][2]attr.Value{
		{m.Pool, state.Pool}, {m.Name, state.Name}, {m.Image, state.Image}, {m.Command, state.Command},
		{emptyAsNull(m.Env), emptyAsNull(state.Env)}, {m.Ports, state.Ports},
		{m.SpreadGroup, state.SpreadGroup}, {m.MaxPerHost, state.MaxPerHost},
		{zeroRetriesAsNull(m.Healthcheck), zeroRetriesAsNull(state.Healthcheck)}, {m.Host, state.Host},
		{m.PullTriggers, state.PullTriggers}, {m.GPUs, state.GPUs},
	}
	pairs = append(pairs, m.runtimePairs(state)...)
	for _, p := range pairs {
		if !p[0].Equal(p[1]) {
			return true
		}
	}
	return false
}

// emptyAsNull is an env with the empty map and null made one (see
// emptyEnvIsUnset).
func emptyAsNull(env types.Map) types.Map {
	if isKnown(env) && len(env.Elements()) == 0 {
		return types.MapNull(env.ElementType(context.Background()))
	}
	return env
}

// zeroRetriesAsNull is a healthcheck with retries 0 and null made one (see
// zeroRetriesIsUnset).
func zeroRetriesAsNull(hc types.Object) types.Object {
	if !isKnown(hc) {
		return hc
	}
	attrs := hc.Attributes()
	if retries, ok := attrs["retries"].(types.Int64); !ok || !isKnown(retries) || retries.ValueInt64() != 0 {
		return hc
	}
	attrs["retries"] = types.Int64Null()
	if normalized, diags := types.ObjectValue(healthcheckTypes, attrs); !diags.HasError() {
		return normalized
	}
	return hc
}

// keepEquivalentSizes plans the prior spelling of cpu or memory when the
// configuration means the same amount (Terraform accepts the prior value in
// place of the configured one).
func (m *ContainerResourceModel) keepEquivalentSizes(state ContainerResourceModel) {
	if !m.Memory.Equal(state.Memory) && sameMemory(m.Memory, state.Memory) {
		m.Memory = state.Memory
	}
	if isKnown(m.CPU) && isKnown(state.CPU) && milliCPU(m.CPU.ValueFloat64()) == milliCPU(state.CPU.ValueFloat64()) {
		m.CPU = state.CPU
	}
}

// resources is the planned or recorded size; zero when not known.
func (m ContainerResourceModel) resources() backend.Resources {
	var res backend.Resources
	if isKnown(m.CPU) {
		res.MilliCPU = milliCPU(m.CPU.ValueFloat64())
	}
	if isKnown(m.Memory) {
		res.MemoryBytes, _ = parseMemory(m.Memory.ValueString())
	}
	return res
}

// ref identifies the container from state alone, so that Read and Delete
// work without the pool resource (destroy, -target, -refresh=false).
func (m ContainerResourceModel) ref() backend.ContainerRef {
	return backend.ContainerRef{
		Pool:        m.Pool.ValueString(),
		Name:        m.Name.ValueString(),
		Host:        m.Host.ValueString(),
		ContainerID: m.ContainerID.ValueString(),
		Resources:   m.resources(),
	}
}

// current is the container as recorded in state.
func (m ContainerResourceModel) current() backend.ContainerState {
	return backend.ContainerState{
		Ref:           m.ref(),
		ReservationID: m.ReservationID.ValueString(),
		Image:         m.Image.ValueString(),
		Resources:     m.resources(),
		SpreadGroup:   m.SpreadGroup.ValueString(),
		MaxPerHost:    int(m.MaxPerHost.ValueInt64()),
		Restart:       m.Restart.ValueString(),
		IPAddress:     m.IPAddress.ValueString(),
		Running:       m.Running.ValueBool(),
		Limits:        m.limits(),
	}
}

// spec converts a fully known plan into the backend's ContainerSpec.
// stopTimeout is stop_timeout as a duration (its default when unset).
func (m ContainerResourceModel) stopTimeout() time.Duration {
	return durationOrDefault(m.StopTimeout, 10*time.Second)
}

func (m ContainerResourceModel) spec(ctx context.Context) (backend.ContainerSpec, diag.Diagnostics) {
	spec := backend.ContainerSpec{
		Pool:        m.Pool.ValueString(),
		Name:        m.Name.ValueString(),
		Image:       m.Image.ValueString(),
		Resources:   m.resources(),
		SpreadGroup: m.SpreadGroup.ValueString(),
		MaxPerHost:  int(m.MaxPerHost.ValueInt64()),
		Restart:     m.Restart.ValueString(),
		StopTimeout: m.stopTimeout(),
		Limits:      m.limits(),
		GPUs:        int(m.GPUs.ValueInt64()),
	}
	if isKnown(m.Host) {
		spec.Host = m.Host.ValueString()
	}
	var diags diag.Diagnostics
	diags.Append(m.Command.ElementsAs(ctx, &spec.Command, false)...)
	diags.Append(m.Env.ElementsAs(ctx, &spec.Env, false)...)
	diags.Append(m.Constraints.ElementsAs(ctx, &spec.Constraints, false)...)
	var ports []portModel
	diags.Append(m.Ports.ElementsAs(ctx, &ports, false)...)
	for _, p := range ports {
		spec.Ports = append(spec.Ports, backend.PortSpec{
			Internal: int(p.Internal.ValueInt64()),
			External: int(p.External.ValueInt64()),
			Protocol: p.Protocol.ValueString(),
			IP:       p.IP.ValueString(),
		})
	}
	if !m.Healthcheck.IsNull() {
		var hc healthcheckModel
		diags.Append(m.Healthcheck.As(ctx, &hc, basetypes.ObjectAsOptions{})...)
		spec.Healthcheck = &engine.Healthcheck{
			Interval:    durationOrDefault(hc.Interval, 0),
			Timeout:     durationOrDefault(hc.Timeout, 0),
			StartPeriod: durationOrDefault(hc.StartPeriod, 0),
			Retries:     int(hc.Retries.ValueInt64()),
		}
		diags.Append(hc.Test.ElementsAs(ctx, &spec.Healthcheck.Test, false)...)
	}
	if !m.RegistryAuth.IsNull() {
		var auth registryAuthModel
		diags.Append(m.RegistryAuth.As(ctx, &auth, basetypes.ObjectAsOptions{})...)
		spec.RegistryAuth = &engine.RegistryAuth{
			ServerAddress: auth.ServerAddress.ValueString(),
			Username:      auth.Username.ValueString(),
			Password:      auth.Password.ValueString(),
		}
	}
	spec.Options, diags = m.options(ctx, diags)
	spec.Options.PullTriggers = m.pullTriggers(ctx, &diags)
	return spec, diags
}

// observe records what the backend saw: placement, identity, network and
// the actual size (keeping the model's spelling when it means the same).
func (m *ContainerResourceModel) observe(ctx context.Context, c backend.ContainerState) diag.Diagnostics {
	m.ID = types.StringValue(c.Ref.Pool + "/" + c.Ref.Name)
	m.Host = types.StringValue(c.Ref.Host)
	m.ContainerID = types.StringValue(c.Ref.ContainerID)
	m.ReservationID = types.StringValue(c.ReservationID)
	m.IPAddress = types.StringValue(c.IPAddress)
	m.Running = types.BoolValue(c.Running)
	m.CPU = cpuValue(m.CPU, c.Resources.MilliCPU)
	m.Memory = memoryValue(m.Memory, c.Resources.MemoryBytes)
	m.Address = types.StringValue(c.Address)
	m.ImageID = types.StringValue(c.ImageID)
	m.RepoDigest = types.StringValue(c.RepoDigest)
	var diags diag.Diagnostics
	m.GPUIDs = listOf(ctx, types.StringType, append([]string{}, c.GPUIDs...), &diags)
	m.observeNetworks(ctx, c.NetworkAddresses, &diags)
	published := make([]publishedPortModel, len(c.Ports))
	for i, p := range c.Ports {
		published[i] = publishedPortModel{
			Internal: types.Int64Value(int64(p.Internal)),
			External: types.Int64Value(int64(p.External)),
			Protocol: types.StringValue(p.Protocol),
			IP:       optionalString(p.IP),
			Address:  types.StringValue(net.JoinHostPort(reachedAt(p.IP, c.Address), strconv.Itoa(p.External))),
		}
	}
	m.PublishedPorts = listOf(ctx, publishedPortObjectType, published, &diags)
	return diags
}

// reachedAt is where a port bound to ip is reached: that interface when it
// is a specific one, else the engine's address.
func reachedAt(ip, engineAddress string) string {
	if addr, err := netip.ParseAddr(ip); err == nil && !addr.IsUnspecified() {
		return ip
	}
	return engineAddress
}

// importedModel rebuilds a whole state from a found container. The port
// list records the ports as published: an import cannot tell which host
// ports were picked by Berth.
func importedModel(ctx context.Context, c backend.ContainerState) (ContainerResourceModel, diag.Diagnostics) {
	var diags diag.Diagnostics
	m := ContainerResourceModel{
		Pool:         types.StringValue(c.Ref.Pool),
		Name:         types.StringValue(c.Ref.Name),
		Image:        types.StringValue(c.Image),
		Command:      types.ListNull(types.StringType),
		Env:          types.MapValueMust(types.StringType, map[string]attr.Value{}), // as {} and as no env
		CPU:          types.Float64Null(),
		Memory:       types.StringNull(),
		Ports:        types.ListNull(portObjectType),
		Constraints:  types.ListNull(types.StringType),
		SpreadGroup:  types.StringNull(),
		MaxPerHost:   types.Int64Null(),
		GPUs:         types.Int64Null(),
		Restart:      types.StringValue(c.Restart),
		Healthcheck:  types.ObjectNull(healthcheckTypes),
		RegistryAuth: types.ObjectNull(registryAuthTypes),
		StopTimeout:  types.StringValue(defaultStopTimeout),
		Timeouts:     timeouts.Value{Object: types.ObjectNull(timeoutsAttrTypes)},
	}
	if c.Restart == "" {
		m.Restart = types.StringValue(defaultRestart)
	}
	if len(c.Command) > 0 {
		var d diag.Diagnostics
		m.Command, d = types.ListValueFrom(ctx, types.StringType, c.Command)
		diags.Append(d...)
	}
	if len(c.Env) > 0 {
		var d diag.Diagnostics
		m.Env, d = types.MapValueFrom(ctx, types.StringType, c.Env)
		diags.Append(d...)
	}
	if len(c.Constraints) > 0 {
		var d diag.Diagnostics
		m.Constraints, d = types.ListValueFrom(ctx, types.StringType, c.Constraints)
		diags.Append(d...)
	}
	if c.SpreadGroup != "" {
		m.SpreadGroup = types.StringValue(c.SpreadGroup)
	}
	if c.MaxPerHost > 0 {
		m.MaxPerHost = types.Int64Value(int64(c.MaxPerHost))
	}
	if len(c.GPUIDs) > 0 {
		m.GPUs = types.Int64Value(int64(len(c.GPUIDs)))
	}
	if c.Healthcheck != nil {
		var d diag.Diagnostics
		m.Healthcheck, d = healthcheckValue(ctx, *c.Healthcheck)
		diags.Append(d...)
	}
	if c.StopTimeout > 0 {
		m.StopTimeout = types.StringValue(c.StopTimeout.String())
	}
	diags.Append(m.importRuntime(ctx, c)...)
	m.importPullTriggers(ctx, c.Options.PullTriggers, &diags)
	diags.Append(m.observe(ctx, c)...)
	if len(c.Ports) > 0 {
		ports := make([]portModel, len(c.Ports))
		for i, p := range c.Ports {
			ports[i] = portModel{
				Internal: types.Int64Value(int64(p.Internal)),
				External: types.Int64Value(int64(p.External)),
				Protocol: types.StringValue(p.Protocol),
				IP:       optionalString(p.IP),
			}
		}
		m.Ports = listOf(ctx, portObjectType, ports, &diags)
	}
	return m, diags
}

// healthcheckValue renders an observed healthcheck the way it is written
// in configuration; unset durations stay null, and retries is a number
// (Docker records 0 for none), which zeroRetriesIsUnset matches to either.
func healthcheckValue(ctx context.Context, hc engine.Healthcheck) (types.Object, diag.Diagnostics) {
	duration := func(d time.Duration) types.String {
		if d == 0 {
			return types.StringNull()
		}
		return types.StringValue(d.String())
	}
	test, diags := types.ListValueFrom(ctx, types.StringType, hc.Test)
	model := healthcheckModel{
		Test:        test,
		Interval:    duration(hc.Interval),
		Timeout:     duration(hc.Timeout),
		StartPeriod: duration(hc.StartPeriod),
		Retries:     types.Int64Value(int64(hc.Retries)),
	}
	value, d := types.ObjectValueFrom(ctx, healthcheckTypes, model)
	diags.Append(d...)
	return value, diags
}
