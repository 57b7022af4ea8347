package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

// defaultVolumeDriver is Docker's own default.
const defaultVolumeDriver = "local"

// VolumeResourceModel is berth_volume's configuration and state.
type VolumeResourceModel struct {
	ID          types.String `tfsdk:"id"`
	Pool        types.String `tfsdk:"pool"`
	Name        types.String `tfsdk:"name"`
	Driver      types.String `tfsdk:"driver"`
	DriverOpts  types.Map    `tfsdk:"driver_opts"`
	Labels      types.Map    `tfsdk:"labels"`
	Size        types.String `tfsdk:"size"`
	SpreadGroup types.String `tfsdk:"spread_group"`
	Constraints types.List   `tfsdk:"constraints"`
	Host        types.String `tfsdk:"host"`
}

// spec is the backend's VolumeSpec; the validators have checked size.
func (m VolumeResourceModel) spec(ctx context.Context, diags *diag.Diagnostics) backend.VolumeSpec {
	spec := backend.VolumeSpec{
		Pool:        m.Pool.ValueString(),
		Name:        m.Name.ValueString(),
		Driver:      m.Driver.ValueString(),
		DriverOpts:  stringMap(ctx, m.DriverOpts, diags),
		Labels:      stringMap(ctx, m.Labels, diags),
		SpreadGroup: m.SpreadGroup.ValueString(),
		Constraints: elements[string](ctx, m.Constraints, diags),
	}
	if isKnown(m.Host) {
		spec.Host = m.Host.ValueString()
	}
	if isKnown(m.Size) {
		spec.SizeBytes, _ = parseSize(m.Size.ValueString(), "disk")
	}
	return spec
}

// ref identifies the volume in state.
func (m VolumeResourceModel) ref() backend.VolumeRef {
	return backend.VolumeRef{Pool: m.Pool.ValueString(), Name: m.Name.ValueString(), Host: m.Host.ValueString()}
}

// observe records the volume as the engine has it. Spellings that mean
// the same as observed are kept (a size of "0.5GiB" against 512MiB, an
// empty map against none), so that a refresh plans nothing.
func (m *VolumeResourceModel) observe(ctx context.Context, v backend.VolumeState, diags *diag.Diagnostics) {
	seen := v.Spec
	m.ID = types.StringValue(seen.Pool + "/" + seen.Name)
	m.Pool = types.StringValue(seen.Pool)
	m.Name = types.StringValue(seen.Name)
	m.Driver = types.StringValue(seen.Driver)
	m.DriverOpts = observedMap(ctx, m.DriverOpts, seen.DriverOpts, diags)
	m.Labels = observedMap(ctx, m.Labels, seen.Labels, diags)
	if seen.SizeBytes > 0 {
		m.Size = diskValue(m.Size, seen.SizeBytes)
	} else {
		m.Size = types.StringNull()
	}
	m.SpreadGroup = optionalString(seen.SpreadGroup)
	if len(seen.Constraints) > 0 || !isKnown(m.Constraints) || len(m.Constraints.Elements()) > 0 {
		m.Constraints = listOf(ctx, types.StringType, seen.Constraints, diags) // an empty list in state stays
	}
	m.Host = types.StringValue(seen.Host)
}

// observedMap is observed as a map value; an empty map in prior stays
// empty rather than turning null.
func observedMap(ctx context.Context, prior types.Map, observed map[string]string, diags *diag.Diagnostics) types.Map {
	if len(observed) == 0 && isKnown(prior) && len(prior.Elements()) == 0 {
		return prior
	}
	if len(observed) == 0 {
		return types.MapNull(types.StringType)
	}
	return mapOf(ctx, observed, diags)
}

// diskValue is memoryValue for disk sizes.
func diskValue(prior types.String, observed int64) types.String {
	if isKnown(prior) {
		if b, err := parseSize(prior.ValueString(), "disk"); err == nil && b == observed {
			return prior
		}
	}
	return types.StringValue(formatMemory(observed))
}
