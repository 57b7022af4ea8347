package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

// Conversion of berth_container's docker_container settings
// (container_schema_runtime.go) to and from engine.ContainerOptions. Unset
// collections stay nil and set ones non-nil, even when empty, so that an
// import gives back exactly what was configured.

type capabilitiesModel struct {
	Add  types.Set `tfsdk:"add"`
	Drop types.Set `tfsdk:"drop"`
}

type ulimitModel struct {
	Name types.String `tfsdk:"name"`
	Soft types.Int64  `tfsdk:"soft"`
	Hard types.Int64  `tfsdk:"hard"`
}

type mountModel struct {
	Type     types.String `tfsdk:"type"`
	Source   types.String `tfsdk:"source"`
	Target   types.String `tfsdk:"target"`
	ReadOnly types.Bool   `tfsdk:"read_only"`
	Size     types.String `tfsdk:"size"`
	Mode     types.String `tfsdk:"mode"`
}

type deviceModel struct {
	HostPath      types.String `tfsdk:"host_path"`
	ContainerPath types.String `tfsdk:"container_path"`
	Permissions   types.String `tfsdk:"permissions"`
}

var (
	stringSetType    = types.SetType{ElemType: types.StringType}
	capabilitiesType = map[string]attr.Type{"add": stringSetType, "drop": stringSetType}
	ulimitType       = types.ObjectType{AttrTypes: map[string]attr.Type{"name": types.StringType, "soft": types.Int64Type, "hard": types.Int64Type}}
	mountType        = types.ObjectType{AttrTypes: map[string]attr.Type{"type": types.StringType, "source": types.StringType, "target": types.StringType, "read_only": types.BoolType, "size": types.StringType, "mode": types.StringType}}
	deviceType       = types.ObjectType{AttrTypes: map[string]attr.Type{"host_path": types.StringType, "container_path": types.StringType, "permissions": types.StringType}}
)

// runtimePairs are the settings whose change replaces the container.
func (m ContainerResourceModel) runtimePairs(state ContainerResourceModel) [][2]attr.Value {
	return [][2]attr.Value{
		{m.Entrypoint, state.Entrypoint}, {m.WorkingDir, state.WorkingDir}, {m.User, state.User},
		{m.Labels, state.Labels}, {m.LogDriver, state.LogDriver}, {m.LogOpts, state.LogOpts},
		{m.Capabilities, state.Capabilities}, {m.Privileged, state.Privileged}, {m.ReadOnly, state.ReadOnly},
		{m.Init, state.Init}, {m.Ulimits, state.Ulimits}, {m.Sysctls, state.Sysctls},
		{m.ExtraHosts, state.ExtraHosts}, {m.DNS, state.DNS}, {m.DNSSearch, state.DNSSearch},
		{m.Devices, state.Devices}, {m.ShmSize, state.ShmSize}, {m.StopSignal, state.StopSignal},
		{m.Mounts, state.Mounts}, {m.Networks, state.Networks},
	}
}

// limits is cpu_limit and memory_limit; zero where unset.
func (m ContainerResourceModel) limits() backend.Resources {
	var lim backend.Resources
	if isKnown(m.CPULimit) {
		lim.MilliCPU = milliCPU(m.CPULimit.ValueFloat64())
	}
	if isKnown(m.MemoryLimit) {
		lim.MemoryBytes, _ = parseMemory(m.MemoryLimit.ValueString())
	}
	return lim
}

// options converts the settings for the backend.
func (m ContainerResourceModel) options(ctx context.Context, diags diag.Diagnostics) (engine.ContainerOptions, diag.Diagnostics) {
	o := engine.ContainerOptions{
		Entrypoint: elements[string](ctx, m.Entrypoint, &diags),
		WorkingDir: m.WorkingDir.ValueString(),
		User:       m.User.ValueString(),
		Labels:     stringMap(ctx, m.Labels, &diags),
		LogDriver:  m.LogDriver.ValueString(),
		LogOpts:    stringMap(ctx, m.LogOpts, &diags),
		Privileged: m.Privileged.ValueBool(),
		ReadOnly:   m.ReadOnly.ValueBool(),
		Init:       m.Init.ValueBool(),
		Sysctls:    stringMap(ctx, m.Sysctls, &diags),
		ExtraHosts: elements[string](ctx, m.ExtraHosts, &diags),
		DNS:        elements[string](ctx, m.DNS, &diags),
		DNSSearch:  elements[string](ctx, m.DNSSearch, &diags),
		StopSignal: m.StopSignal.ValueString(),
		Networks:   m.attachments(ctx, &diags),
	}
	if isKnown(m.ShmSize) {
		o.ShmBytes, _ = parseMemory(m.ShmSize.ValueString())
	}
	if isKnown(m.Capabilities) {
		var caps capabilitiesModel
		diags.Append(m.Capabilities.As(ctx, &caps, basetypes.ObjectAsOptions{})...)
		o.CapAdd = elements[string](ctx, caps.Add, &diags)
		o.CapDrop = elements[string](ctx, caps.Drop, &diags)
	}
	if ulimits := elements[ulimitModel](ctx, m.Ulimits, &diags); ulimits != nil {
		o.Ulimits = make([]engine.Ulimit, len(ulimits))
		for i, u := range ulimits {
			o.Ulimits[i] = engine.Ulimit{Name: u.Name.ValueString(), Soft: u.Soft.ValueInt64(), Hard: u.Hard.ValueInt64()}
		}
	}
	if devices := elements[deviceModel](ctx, m.Devices, &diags); devices != nil {
		o.Devices = make([]engine.Device, len(devices))
		for i, d := range devices {
			o.Devices[i] = engine.Device{HostPath: d.HostPath.ValueString(), ContainerPath: d.ContainerPath.ValueString(), Permissions: d.Permissions.ValueString()}
		}
	}
	if mounts := elements[mountModel](ctx, m.Mounts, &diags); mounts != nil {
		o.Mounts = make([]engine.Mount, len(mounts))
		for i, mt := range mounts {
			o.Mounts[i] = engine.Mount{
				Type: mt.Type.ValueString(), Source: mt.Source.ValueString(), Target: mt.Target.ValueString(),
				ReadOnly: mt.ReadOnly.ValueBool(),
			}
			if isKnown(mt.Size) {
				o.Mounts[i].SizeBytes, _ = parseMemory(mt.Size.ValueString())
			}
			if isKnown(mt.Mode) {
				o.Mounts[i].Mode, _ = parseMode(mt.Mode.ValueString())
			}
		}
	}
	return o, diags
}

// importRuntime sets every setting from a found container's options and
// limits.
func (m *ContainerResourceModel) importRuntime(ctx context.Context, c backend.ContainerState) diag.Diagnostics {
	var diags diag.Diagnostics
	o := c.Options
	m.Entrypoint = listOf(ctx, types.StringType, o.Entrypoint, &diags)
	m.WorkingDir = optionalString(o.WorkingDir)
	m.User = optionalString(o.User)
	m.Labels = mapOf(ctx, o.Labels, &diags)
	m.LogDriver = optionalString(o.LogDriver)
	m.LogOpts = mapOf(ctx, o.LogOpts, &diags)
	m.Privileged = types.BoolValue(o.Privileged)
	m.ReadOnly = types.BoolValue(o.ReadOnly)
	m.Init = types.BoolValue(o.Init)
	m.Sysctls = mapOf(ctx, o.Sysctls, &diags)
	m.ExtraHosts = listOf(ctx, types.StringType, o.ExtraHosts, &diags)
	m.DNS = listOf(ctx, types.StringType, o.DNS, &diags)
	m.DNSSearch = listOf(ctx, types.StringType, o.DNSSearch, &diags)
	m.StopSignal = optionalString(o.StopSignal)
	m.ShmSize = types.StringNull()
	if o.ShmBytes > 0 {
		m.ShmSize = types.StringValue(formatMemory(o.ShmBytes))
	}
	m.Capabilities = types.ObjectNull(capabilitiesType)
	if o.CapAdd != nil || o.CapDrop != nil {
		caps := capabilitiesModel{
			Add:  setOf(ctx, o.CapAdd, &diags),
			Drop: setOf(ctx, o.CapDrop, &diags),
		}
		var d diag.Diagnostics
		m.Capabilities, d = types.ObjectValueFrom(ctx, capabilitiesType, caps)
		diags.Append(d...)
	}
	var ulimits []ulimitModel
	if o.Ulimits != nil {
		ulimits = make([]ulimitModel, len(o.Ulimits))
		for i, u := range o.Ulimits {
			ulimits[i] = ulimitModel{Name: types.StringValue(u.Name), Soft: types.Int64Value(u.Soft), Hard: types.Int64Value(u.Hard)}
		}
	}
	m.Ulimits = listOf(ctx, ulimitType, ulimits, &diags)
	var devices []deviceModel
	if o.Devices != nil {
		devices = make([]deviceModel, len(o.Devices))
		for i, d := range o.Devices {
			devices[i] = deviceModel{HostPath: types.StringValue(d.HostPath), ContainerPath: optionalString(d.ContainerPath), Permissions: optionalString(d.Permissions)}
		}
	}
	m.Devices = listOf(ctx, deviceType, devices, &diags)
	var mounts []mountModel
	if o.Mounts != nil {
		mounts = make([]mountModel, len(o.Mounts))
		for i, mt := range o.Mounts {
			mounts[i] = mountModel{
				Type: types.StringValue(mt.Type), Source: optionalString(mt.Source), Target: types.StringValue(mt.Target),
				ReadOnly: types.BoolValue(mt.ReadOnly), Size: types.StringNull(), Mode: types.StringNull(),
			}
			if mt.SizeBytes > 0 {
				mounts[i].Size = types.StringValue(formatMemory(mt.SizeBytes))
			}
			if mt.Mode > 0 {
				mounts[i].Mode = types.StringValue(fmt.Sprintf("%04o", mt.Mode))
			}
		}
	}
	m.Mounts = listOf(ctx, mountType, mounts, &diags)
	m.importNetworks(ctx, o.Networks, &diags)
	m.CPULimit = types.Float64Null()
	if c.Limits.MilliCPU > 0 {
		m.CPULimit = types.Float64Value(float64(c.Limits.MilliCPU) / 1000)
	}
	m.MemoryLimit = types.StringNull()
	if c.Limits.MemoryBytes > 0 {
		m.MemoryLimit = types.StringValue(formatMemory(c.Limits.MemoryBytes))
	}
	return diags
}

// elementsValue is a list or a set.
type elementsValue interface {
	attr.Value
	ElementsAs(ctx context.Context, target any, allowUnhandled bool) diag.Diagnostics
}

// elements decodes a list or set; nil when unset, non-nil when set.
func elements[T any](ctx context.Context, v elementsValue, diags *diag.Diagnostics) []T {
	if !isKnown(v) {
		return nil
	}
	out := []T{}
	diags.Append(v.ElementsAs(ctx, &out, false)...)
	return out
}

// stringMap decodes a map; nil when unset, non-nil when set.
func stringMap(ctx context.Context, v types.Map, diags *diag.Diagnostics) map[string]string {
	if !isKnown(v) {
		return nil
	}
	out := map[string]string{}
	diags.Append(v.ElementsAs(ctx, &out, false)...)
	return out
}

func listOf[T any](ctx context.Context, elem attr.Type, values []T, diags *diag.Diagnostics) types.List {
	if values == nil {
		return types.ListNull(elem)
	}
	list, d := types.ListValueFrom(ctx, elem, values)
	diags.Append(d...)
	return list
}

func setOf(ctx context.Context, values []string, diags *diag.Diagnostics) types.Set {
	if values == nil {
		return types.SetNull(types.StringType)
	}
	set, d := types.SetValueFrom(ctx, types.StringType, values)
	diags.Append(d...)
	return set
}

func mapOf(ctx context.Context, values map[string]string, diags *diag.Diagnostics) types.Map {
	if values == nil {
		return types.MapNull(types.StringType)
	}
	m, d := types.MapValueFrom(ctx, types.StringType, values)
	diags.Append(d...)
	return m
}

func optionalString(s string) types.String {
	if s == "" {
		return types.StringNull()
	}
	return types.StringValue(s)
}
