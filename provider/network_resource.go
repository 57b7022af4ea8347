package provider

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/berthsh/terraform-provider-berth/scheduler"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

var (
	_ resource.Resource                   = (*NetworkResource)(nil)
	_ resource.ResourceWithConfigure      = (*NetworkResource)(nil)
	_ resource.ResourceWithImportState    = (*NetworkResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*NetworkResource)(nil)
	_ resource.ResourceWithValidateConfig = (*NetworkResource)(nil)
)

// NewNetworkResource is the berth_network constructor.
func NewNetworkResource() resource.Resource {
	return &NetworkResource{}
}

// NetworkResource is berth_network: one Docker network on every host of a
// pool, labelled so that any process finds it.
type NetworkResource struct {
	data *providerData
}

func (r *NetworkResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_network"
}

func (r *NetworkResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	replaceString := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	replaceMap := []planmodifier.Map{mapplanmodifier.RequiresReplace()}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A Docker network present on every host of a pool, named `<pool>.<name>` on the engines. " +
			"`bridge` networks are per host: containers on the same host reach each other, by name and `aliases` " +
			"too. `macvlan` and `ipvlan` networks join the hosts into one L2 segment on their `parent` interface: " +
			"Berth gives each host its own slice of `subnet` (see `hosts`), so container addresses are unique " +
			"across the pool, and a container with a fixed `ipv4_address` lands on the host whose slice holds it. " +
			"A host that joins the pool gets the network on the next apply of the network (the plan shows it " +
			"under `hosts`), and so does a host whose copy was removed out of band. Destroying the network, or " +
			"taking it off a host, is refused while containers use it. Changing anything but the pool's hosts " +
			"replaces the network. Import with `<pool>/<name>`.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "`<pool>/<name>`.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"pool": schema.StringAttribute{
				MarkdownDescription: "Pool whose hosts get the network (a `berth_pool`'s `id` or name).",
				Required:            true,
				Validators:          []validator.String{poolNameValidator()},
				PlanModifiers:       replaceString,
			},
			"name": schema.StringAttribute{
				MarkdownDescription: "Name, unique within the pool; containers join it with `networks = [{ name = ... }]`.",
				Required:            true,
				Validators:          []validator.String{containerNameValidator()},
				PlanModifiers:       replaceString,
			},
			"driver": schema.StringAttribute{
				MarkdownDescription: "`bridge` (the default): per host. `macvlan` or `ipvlan`: one segment across hosts, on `parent`.",
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString(backend.DriverBridge),
				Validators:          []validator.String{stringvalidator.OneOf(backend.DriverBridge, backend.DriverMacvlan, backend.DriverIPvlan)},
				PlanModifiers:       replaceString,
			},
			"parent": schema.StringAttribute{
				MarkdownDescription: "Host interface the `macvlan`/`ipvlan` network sits on, e.g. `\"eth0\"`, the same on every host. " +
					"Required for those drivers; not used by `bridge`.",
				Optional:      true,
				Validators:    []validator.String{stringvalidator.RegexMatches(interfaceRegexp, "must be a network interface name such as eth0 or bond0.100")},
				PlanModifiers: replaceString,
			},
			"subnet": schema.StringAttribute{
				MarkdownDescription: "IPv4 subnet in CIDR form, e.g. `\"10.20.0.0/16\"`. Required for `macvlan`/`ipvlan` " +
					"(hosts get slices of it); optional for `bridge`, where Docker picks one per host when unset.",
				Optional:      true,
				Validators:    []validator.String{subnetValidator()},
				PlanModifiers: replaceString,
			},
			"gateway": schema.StringAttribute{
				MarkdownDescription: "Gateway address within `subnet`; defaults to its first address (`10.20.0.1` for " +
					"`10.20.0.0/16`), the same on every host. Null when `subnet` is unset.",
				Optional:      true,
				Computed:      true,
				Validators:    []validator.String{ipv4AddressValidator()},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplaceIfConfigured()},
			},
			"host_prefix_length": schema.Int64Attribute{
				MarkdownDescription: fmt.Sprintf("`macvlan`/`ipvlan`: prefix length of each host's slice of `subnet` "+
					"(Docker's `ip_range` on that host). Defaults to the subnet's plus %d, room for %d hosts "+
					"(a /16 gives each host a /20). Null for `bridge`.", scheduler.DefaultSliceBits, 1<<scheduler.DefaultSliceBits),
				Optional:      true,
				Computed:      true,
				Validators:    []validator.Int64{int64validator.Between(1, 30)},
				PlanModifiers: []planmodifier.Int64{int64planmodifier.RequiresReplaceIfConfigured()},
			},
			"options": schema.MapAttribute{
				MarkdownDescription: "Driver options, e.g. `{ macvlan_mode = \"bridge\" }` or `{ \"com.docker.network.bridge.enable_icc\" = \"true\" }`. " +
					"Set `parent` with its own attribute.",
				ElementType:   types.StringType,
				Optional:      true,
				Validators:    []validator.Map{mapvalidator.KeysAre(stringvalidator.NoneOf("parent"), stringvalidator.LengthAtLeast(1))},
				PlanModifiers: replaceMap,
			},
			"labels": schema.MapAttribute{
				MarkdownDescription: "Docker labels on the network on every host. Keys under `sh.berth.` are Berth's own and refused.",
				ElementType:         types.StringType,
				Optional:            true,
				Validators:          []validator.Map{mapvalidator.KeysAre(labelKeyValidator())},
				PlanModifiers:       replaceMap,
			},
			"hosts": schema.MapNestedAttribute{
				MarkdownDescription: "The network on each host of the pool, by host: Docker's network id there and, " +
					"for `macvlan`/`ipvlan`, the host's slice of `subnet`. A host without the network yet (it joined " +
					"the pool, or its copy was removed out of band) shows with an unknown `network_id` in the plan.",
				Computed: true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"network_id": schema.StringAttribute{MarkdownDescription: "Docker's id of the network on that host.", Computed: true},
					"ip_range":   schema.StringAttribute{MarkdownDescription: "The host's slice of `subnet` (`macvlan`/`ipvlan`); null for `bridge`.", Computed: true},
				}},
			},
		},
	}
}

func (r *NetworkResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	data, diags := providerDataFrom(req.ProviderData)
	resp.Diagnostics.Append(diags...)
	r.data = data
}

func (r *NetworkResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan NetworkResourceModel
	be, diags := r.data.load(ctx, req.Plan, &plan)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	r.apply(ctx, be, &plan, nil, &resp.Diagnostics)
	if !resp.Diagnostics.HasError() {
		resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
	}
}

// Read finds the network on the pool's hosts: a host where it is gone
// keeps its slice with a null network_id, so the plan re-creates it there.
func (r *NetworkResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state NetworkResourceModel
	be, diags := r.data.load(ctx, req.State, &state)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	observed, err := be.ReadNetwork(ctx, state.Pool.ValueString(), state.Name.ValueString())
	if err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Cannot read network %s", state.ID.ValueString()), err.Error())
		return
	}
	if observed == nil { // gone from every host: plan a re-create
		resp.State.RemoveResource(ctx)
		return
	}
	resp.Diagnostics.Append(state.observe(ctx, *observed)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
}

// Update puts the network on the hosts that lack it and takes it off
// hosts that left the pool; nothing else changes in place.
func (r *NetworkResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state NetworkResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	be, diags := r.data.load(ctx, req.Plan, &plan)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	current, diags := state.status(ctx)
	resp.Diagnostics.Append(diags...)
	r.apply(ctx, be, &plan, &current, &resp.Diagnostics)
	if !resp.Diagnostics.HasError() {
		resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
	}
}

func (r *NetworkResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state NetworkResourceModel
	be, diags := r.data.load(ctx, req.State, &state)
	resp.Diagnostics.Append(diags...)
	current, more := state.status(ctx)
	resp.Diagnostics.Append(more...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := be.DeleteNetwork(ctx, current); err != nil {
		addNetworkError(&resp.Diagnostics, fmt.Sprintf("Cannot delete network %s", state.ID.ValueString()), err)
	}
}

// ImportState takes "<pool>/<name>"; Read fills in the rest from the
// network's copies on the engines.
func (r *NetworkResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	importPoolMember(ctx, req, resp, "terraform import berth_network.app dc1/app")
}

// ValidateConfig checks what depends on several attributes: the driver's
// needs, and the gateway and slices against the subnet.
func (r *NetworkResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var config NetworkResourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	config.validate(&resp.Diagnostics)
}

// ModifyPlan makes the id known, fills in the default gateway and slice
// length, and plans the network's hosts: every host of the pool (as
// planned in this run, else as recorded), keeping the ids and slices in
// state. It also tells containers planned next in this process where the
// network's slices are.
func (r *NetworkResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() { // destroy
		return
	}
	var plan NetworkResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var current *backend.NetworkStatus
	if !req.State.Raw.IsNull() {
		var state NetworkResourceModel
		resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
		status, diags := state.status(ctx)
		resp.Diagnostics.Append(diags...)
		current = &status
		plan.Hosts = state.Hosts
	}
	plan.fillDefaults()
	be := r.data.planBackend()
	if be != nil && req.Config.Raw.IsFullyKnown() && !resp.Diagnostics.HasError() {
		r.planHosts(ctx, be, &plan, current, &resp.Diagnostics)
	} else if current == nil {
		plan.Hosts = types.MapUnknown(networkHostType)
	}
	if !resp.Diagnostics.HasError() {
		resp.Diagnostics.Append(resp.Plan.Set(ctx, plan)...)
	}
}

// planHosts asks the backend where the network goes. A pool that does not
// exist yet (created in the same apply) leaves the hosts unknown.
func (r *NetworkResource) planHosts(ctx context.Context, be backend.Backend, plan *NetworkResourceModel, current *backend.NetworkStatus, diags *diag.Diagnostics) {
	spec := plan.spec(ctx, diags)
	if current != nil && !sameNetworkSpec(current.Spec, spec) {
		current = nil // replaced: the new network starts afresh
	}
	planned, err := be.PlanNetwork(ctx, spec, current)
	switch {
	case errors.Is(err, backend.ErrPoolNotFound):
		plan.Hosts = types.MapUnknown(networkHostType)
		r.data.networks.plan(spec.Pool, spec.Name, nil)
		return
	case err != nil:
		diags.AddAttributeError(path.Root("subnet"), fmt.Sprintf("Network %s/%s cannot be planned", spec.Pool, spec.Name), err.Error())
		return
	}
	plan.Hosts = hostsValue(ctx, planned, true, diags)
	r.data.networks.plan(spec.Pool, spec.Name, &planned)
}

// sameNetworkSpec reports whether no attribute that replaces the network
// differs between a and b.
func sameNetworkSpec(a, b backend.NetworkSpec) bool {
	return a.Pool == b.Pool && a.Name == b.Name && a.Driver == b.Driver && a.Parent == b.Parent &&
		a.Subnet == b.Subnet && a.Gateway == b.Gateway && a.SlicePrefix == b.SlicePrefix &&
		maps.Equal(a.Options, b.Options) && maps.Equal(a.Labels, b.Labels)
}

// apply creates the network where the plan lacks an id and records the ids.
func (r *NetworkResource) apply(ctx context.Context, be backend.Backend, plan *NetworkResourceModel, current *backend.NetworkStatus, diags *diag.Diagnostics) {
	spec := plan.spec(ctx, diags)
	if diags.HasError() {
		return
	}
	planned, d := plan.status(ctx)
	diags.Append(d...)
	if plan.Hosts.IsUnknown() { // the pool was created in this apply
		var err error
		if planned, err = be.PlanNetwork(ctx, spec, nil); err != nil {
			diags.AddError(fmt.Sprintf("Cannot plan network %s/%s", spec.Pool, spec.Name), err.Error())
			return
		}
	}
	applied, err := be.ApplyNetwork(ctx, planned, current)
	if err != nil {
		addNetworkError(diags, fmt.Sprintf("Cannot apply network %s/%s", spec.Pool, spec.Name), err)
		return
	}
	plan.Hosts = hostsValue(ctx, applied, false, diags)
}

// addNetworkError files a network error; containers still attached are
// a clear "in use" error, not an engine failure.
func addNetworkError(diags *diag.Diagnostics, summary string, err error) {
	if errors.Is(err, backend.ErrNetworkInUse) {
		diags.AddError(summary+": containers still use it", err.Error())
		return
	}
	diags.AddError(summary, err.Error())
}
