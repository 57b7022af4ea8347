package provider

import (
	"context"
	"fmt"
	"maps"
	"regexp"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/berthsh/terraform-provider-berth/scheduler"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

var (
	_ resource.Resource                = (*PoolResource)(nil)
	_ resource.ResourceWithConfigure   = (*PoolResource)(nil)
	_ resource.ResourceWithImportState = (*PoolResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*PoolResource)(nil)
)

// defaultStrategy and defaultPortRange are what an unset attribute means.
const defaultStrategy = string(scheduler.Spread)

// gpuIDPattern is what a GPU id may be: an index or a UUID, nothing that
// would break NVIDIA_VISIBLE_DEVICES's comma-separated list.
var gpuIDPattern = regexp.MustCompile(`^[A-Za-z0-9_:-]+$`)

var defaultPortRange = fmt.Sprintf("%d-%d", scheduler.DefaultPortRange.Min, scheduler.DefaultPortRange.Max)

// NewPoolResource is the berth_pool constructor.
func NewPoolResource() resource.Resource {
	return &PoolResource{}
}

// PoolResource is berth_pool: a named group of engines with labels and
// capacities, recorded on each member engine.
type PoolResource struct {
	data *providerData
}

// PoolResourceModel is berth_pool's configuration and state.
type PoolResourceModel struct {
	ID       types.String `tfsdk:"id"`
	Name     types.String `tfsdk:"name"`
	Strategy types.String `tfsdk:"strategy"`
	Hosts    types.Map    `tfsdk:"hosts"` // of poolHostModel
}

// poolHostModel is one entry of hosts.
type poolHostModel struct {
	Labels           types.Map     `tfsdk:"labels"`
	CPU              types.Float64 `tfsdk:"cpu"`
	Memory           types.String  `tfsdk:"memory"`
	MaxContainers    types.Int64   `tfsdk:"max_containers"`
	PortRange        types.String  `tfsdk:"port_range"`
	Schedulable      types.Bool    `tfsdk:"schedulable"`
	Lost             types.Bool    `tfsdk:"lost"`
	Disk             types.String  `tfsdk:"disk"`
	GPUs             types.Int64   `tfsdk:"gpus"`
	GPUIDs           types.List    `tfsdk:"gpu_ids"`
	DiscoveredCPUs   types.Int64   `tfsdk:"discovered_cpus"`
	DiscoveredMemory types.Int64   `tfsdk:"discovered_memory"`
	EngineVersion    types.String  `tfsdk:"engine_version"`
	APIVersion       types.String  `tfsdk:"api_version"`
}

var poolHostAttrTypes = map[string]attr.Type{
	"labels":            types.MapType{ElemType: types.StringType},
	"cpu":               types.Float64Type,
	"memory":            types.StringType,
	"max_containers":    types.Int64Type,
	"port_range":        types.StringType,
	"schedulable":       types.BoolType,
	"lost":              types.BoolType,
	"disk":              types.StringType,
	"gpus":              types.Int64Type,
	"gpu_ids":           types.ListType{ElemType: types.StringType},
	"discovered_cpus":   types.Int64Type,
	"discovered_memory": types.Int64Type,
	"engine_version":    types.StringType,
	"api_version":       types.StringType,
}

func (r *PoolResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_pool"
}

func (r *PoolResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A pool of Docker engines that containers are placed on. The pool writes a small " +
			"record of itself onto each member engine, so any provider process (and any workspace with the " +
			"same provider block) can resolve the pool by name. Deleting a pool that still has containers is refused.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "The pool's name: `pool = berth_pool.x.id` and `pool = \"x\"` are equivalent. " +
					"Known at plan time as soon as `name` is.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				MarkdownDescription: "The pool's name, unique among the engines: 1-63 characters of lower-case " +
					"letters, digits and `-`. Changing it replaces the pool.",
				Required:      true,
				Validators:    []validator.String{poolNameValidator()},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"strategy": schema.StringAttribute{
				MarkdownDescription: "How hosts are ranked for a new container: `spread` (fewest containers " +
					"and most free capacity first), `binpack` (fill the fullest host that fits first) or `random`. " +
					"Defaults to `spread`.",
				Optional:   true,
				Computed:   true,
				Default:    stringdefault.StaticString(defaultStrategy),
				Validators: []validator.String{stringvalidator.OneOf(string(scheduler.Spread), string(scheduler.Binpack), string(scheduler.Random))},
			},
			"hosts": schema.MapNestedAttribute{
				MarkdownDescription: "Member engines, keyed by an engine name of the provider block's `engines`. " +
					"Hosts can be added, relabelled and resized in place; removing one that still runs containers " +
					"of the pool is refused. At least one host.",
				Required:   true,
				Validators: []validator.Map{mapvalidator.SizeAtLeast(1)},
				NestedObject: schema.NestedAttributeObject{
					Attributes: map[string]schema.Attribute{
						"labels": schema.MapAttribute{
							MarkdownDescription: "Labels that container `constraints` match, e.g. `{ zone = \"a\" }`.",
							ElementType:         types.StringType,
							Optional:            true,
						},
						"cpu": schema.Float64Attribute{
							MarkdownDescription: "Schedulable CPUs (may be fractional, at least 0.01). " +
								"Defaults to the engine's CPU count.",
							Optional:   true,
							Validators: []validator.Float64{cpuCheck{}},
						},
						"memory": schema.StringAttribute{
							MarkdownDescription: "Schedulable memory, e.g. `\"64GiB\"` (binary units). " +
								"Defaults to the engine's total memory.",
							Optional:   true,
							Validators: []validator.String{memoryValidator()},
						},
						"max_containers": schema.Int64Attribute{
							MarkdownDescription: "Most Berth containers this host may run. Unlimited when unset.",
							Optional:            true,
							Validators:          []validator.Int64{int64validator.AtLeast(1)},
						},
						"port_range": schema.StringAttribute{
							MarkdownDescription: "Host ports Berth picks from for ports with `external = 0`, as " +
								"`\"MIN-MAX\"`. Defaults to `\"" + defaultPortRange + "\"`.",
							Optional:   true,
							Computed:   true,
							Default:    stringdefault.StaticString(defaultPortRange),
							Validators: []validator.String{portRangeValidator()},
						},
						"schedulable": schema.BoolAttribute{
							MarkdownDescription: "`false` cordons the host: the containers it runs stay (and keep " +
								"their capacity), but no new container is placed there, and replacements move elsewhere. " +
								"Defaults to `true`.",
							Optional: true,
							Computed: true,
							Default:  booldefault.StaticBool(true),
						},
						"lost": schema.BoolAttribute{
							MarkdownDescription: "`true` writes the host off when its engine is gone for good: " +
								"Berth stops asking it, takes nothing new there, and forgets the pool's containers on " +
								"it (the next plan re-creates them elsewhere; deleting one just drops it from state). " +
								"Once they are gone from state, remove the host from `hosts`. Defaults to `false`. " +
								"A cordoned host (`schedulable = false`) that does not answer does not fail the pool either.",
							Optional: true,
							Computed: true,
							Default:  booldefault.StaticBool(false),
						},
						"disk": schema.StringAttribute{
							MarkdownDescription: "Volume space that `berth_volume` sizes are reserved against, e.g. " +
								"`\"500GiB\"` (binary units). Docker does not report free disk, so there is no default: " +
								"when unset, disk is not accounted on this host and a volume of any `size` fits there " +
								"(its size still shows as reserved).",
							Optional:   true,
							Validators: []validator.String{diskValidator()},
						},
						"gpus": schema.Int64Attribute{
							MarkdownDescription: "How many GPUs containers may reserve here (`gpus` on `berth_container`). " +
								"Each is held by one container at a time. Defaults to none; with `gpu_ids`, leave it " +
								"unset or equal to their number.",
							Optional:   true,
							Validators: []validator.Int64{int64validator.AtLeast(0)},
						},
						"gpu_ids": schema.ListAttribute{
							MarkdownDescription: "The GPUs' device ids or indexes (`[\"0\", \"1\"]`, or UUIDs as " +
								"`nvidia-smi -L` lists them). When set, each container is given specific ids, never " +
								"one that another container holds.",
							ElementType: types.StringType,
							Optional:    true,
							Validators: []validator.List{
								listvalidator.SizeAtLeast(1),
								uniqueStrings{},
								listvalidator.ValueStringsAre(stringvalidator.LengthAtLeast(1), stringvalidator.RegexMatches(gpuIDPattern, "must be letters, digits, '-', '_' or ':' (no commas or spaces)")),
							},
						},
						"discovered_cpus": schema.Int64Attribute{
							// No UseStateForUnknown on what engines report: an update
							// discovers again (after a Docker upgrade, say), so these are
							// unknown in its plan; an unchanged pool keeps them (ModifyPlan).
							MarkdownDescription: "CPUs the engine reports (`NCPU`), as of the last apply.",
							Computed:            true,
						},
						"discovered_memory": schema.Int64Attribute{
							MarkdownDescription: "Memory the engine reports (`MemTotal`), in bytes, as of the last apply.",
							Computed:            true,
						},
						"engine_version": schema.StringAttribute{
							MarkdownDescription: "The engine's Docker version, as of the last apply.",
							Computed:            true,
						},
						"api_version": schema.StringAttribute{
							MarkdownDescription: "The engine's Docker API version, as of the last apply.",
							Computed:            true,
						},
					},
				},
			},
		},
	}
}

func (r *PoolResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	data, diags := providerDataFrom(req.ProviderData)
	resp.Diagnostics.Append(diags...)
	r.data = data
}

func (r *PoolResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	resp.Diagnostics.Append(r.apply(ctx, req.Plan, &resp.State)...)
}

func (r *PoolResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state PoolResourceModel
	be, diags := r.data.load(ctx, req.State, &state)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	status, err := be.ReadPool(ctx, state.Name.ValueString())
	if err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Cannot read pool %q", state.Name.ValueString()), err.Error())
		return
	}
	if status == nil { // the record is gone from every engine: plan a re-create
		resp.State.RemoveResource(ctx)
		return
	}
	resp.Diagnostics.Append(state.observe(ctx, *status)...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
}

// Update rewrites the records: hosts are added, relabelled and resized in
// place (the backend refuses to drop a host that still has containers).
func (r *PoolResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	resp.Diagnostics.Append(r.apply(ctx, req.Plan, &resp.State)...)
}

func (r *PoolResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state PoolResourceModel
	be, diags := r.data.load(ctx, req.State, &state)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := be.DeletePool(ctx, state.Name.ValueString()); err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Cannot delete pool %q", state.Name.ValueString()), err.Error())
	}
}

// ImportState takes the pool's name; Read then fills in the rest from the
// record on the engines.
func (r *PoolResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if !poolNameRegexp.MatchString(req.ID) {
		resp.Diagnostics.AddError("Invalid import ID",
			fmt.Sprintf("%q is not a pool name: use the pool's name, e.g. terraform import berth_pool.dc1 dc1", req.ID))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), req.ID)...)
}

// ModifyPlan makes the id known at plan, checks that every host is an
// engine of the provider block, keeps equivalent spellings of memory and
// port ranges (and discovered values when nothing changes), and lets the backend check the engines and remember the pool so
// that containers planned in the same run can be checked against it.
func (r *PoolResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() { // destroy
		return
	}
	var plan PoolResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if isKnown(plan.Name) {
		plan.ID = plan.Name
	}
	if !plan.Hosts.IsUnknown() {
		resp.Diagnostics.Append(r.checkHostsAreEngines(plan.Hosts)...)
	}
	if !req.State.Raw.IsNull() {
		var state PoolResourceModel
		resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
		resp.Diagnostics.Append(plan.keepPriorWhereSame(ctx, state)...)
	}
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, plan)...)

	be := r.data.planBackend()
	if be == nil || !req.Config.Raw.IsFullyKnown() || resp.Diagnostics.HasError() {
		return
	}
	if resp.Plan.Raw.Equal(req.State.Raw) {
		// Unchanged: nothing to check, and no member needs to answer (a dead
		// engine must not hold the workspace hostage).
		return
	}
	spec, diags := plan.spec(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	if _, err := be.PlanPool(ctx, spec); err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("hosts"), fmt.Sprintf("Pool %q cannot be set up", spec.Name), err.Error())
	}
}

func (r *PoolResource) checkHostsAreEngines(hosts types.Map) diag.Diagnostics {
	var diags diag.Diagnostics
	names, ok := r.data.engineNames()
	if !ok {
		return diags
	}
	for host := range hosts.Elements() {
		if _, found := r.data.endpoints[host]; !found {
			diags.AddAttributeError(path.Root("hosts").AtMapKey(host), "Unknown engine",
				fmt.Sprintf("Host %q is not an engine of the provider block. Known engines: %s. "+
					"Add %q to the provider's engines, or use one of those names.", host, quoteList(names), host))
		}
	}
	return diags
}

// apply writes the planned pool onto its engines and records what they
// reported; Create and Update are the same operation.
func (r *PoolResource) apply(ctx context.Context, planned tfsdk.Plan, state *tfsdk.State) diag.Diagnostics {
	var plan PoolResourceModel
	be, diags := r.data.load(ctx, planned, &plan)
	if diags.HasError() {
		return diags
	}
	spec, d := plan.spec(ctx)
	diags.Append(d...)
	if diags.HasError() {
		return diags
	}
	status, err := be.ApplyPool(ctx, spec)
	if err != nil {
		diags.AddError(fmt.Sprintf("Cannot apply pool %q", spec.Name), err.Error())
		return diags
	}
	diags.Append(plan.observe(ctx, status)...)
	if diags.HasError() {
		return diags
	}
	diags.Append(state.Set(ctx, plan)...)
	return diags
}

// hosts decodes the hosts map.
func (m PoolResourceModel) hosts(ctx context.Context) (map[string]poolHostModel, diag.Diagnostics) {
	hosts := map[string]poolHostModel{}
	if m.Hosts.IsNull() || m.Hosts.IsUnknown() {
		return hosts, nil
	}
	diags := m.Hosts.ElementsAs(ctx, &hosts, false)
	return hosts, diags
}

// spec converts a fully known model to the backend's PoolSpec.
func (m PoolResourceModel) spec(ctx context.Context) (backend.PoolSpec, diag.Diagnostics) {
	hosts, diags := m.hosts(ctx)
	spec := backend.PoolSpec{
		Name:     m.Name.ValueString(),
		Strategy: m.Strategy.ValueString(),
		Hosts:    make(map[string]backend.PoolHostSpec, len(hosts)),
	}
	for name, h := range hosts {
		hostPath := path.Root("hosts").AtMapKey(name)
		host := backend.PoolHostSpec{MaxContainers: int(h.MaxContainers.ValueInt64()), Cordoned: isKnown(h.Schedulable) && !h.Schedulable.ValueBool(), Lost: h.Lost.ValueBool()}
		diags.Append(h.Labels.ElementsAs(ctx, &host.Labels, false)...)
		if isKnown(h.CPU) {
			host.MilliCPU = milliCPU(h.CPU.ValueFloat64())
		}
		if isKnown(h.Memory) {
			b, err := parseMemory(h.Memory.ValueString())
			if err != nil {
				diags.AddAttributeError(hostPath.AtName("memory"), "Invalid memory size", err.Error())
			}
			host.MemoryBytes = b
		}
		if isKnown(h.Disk) {
			b, err := parseMemory(h.Disk.ValueString())
			if err != nil {
				diags.AddAttributeError(hostPath.AtName("disk"), "Invalid disk size", err.Error())
			}
			host.DiskBytes = b
		}
		host.GPUs = int(h.GPUs.ValueInt64())
		if isKnown(h.GPUIDs) {
			diags.Append(h.GPUIDs.ElementsAs(ctx, &host.GPUIDs, false)...)
			if isKnown(h.GPUs) && host.GPUs != len(host.GPUIDs) {
				diags.AddAttributeError(hostPath.AtName("gpus"), "gpus and gpu_ids disagree",
					fmt.Sprintf("Attribute %s: gpus = %d but gpu_ids names %d GPUs: leave gpus unset when gpu_ids is set, or make them agree.",
						hostPath.AtName("gpus"), host.GPUs, len(host.GPUIDs)))
			}
		}
		if isKnown(h.PortRange) {
			lo, hi, err := parsePortRange(h.PortRange.ValueString())
			if err != nil {
				diags.AddAttributeError(hostPath.AtName("port_range"), "Invalid port range", err.Error())
			}
			host.PortMin, host.PortMax = lo, hi
		}
		spec.Hosts[name] = host
	}
	return spec, diags
}

// observe rewrites the model from what the engines hold, keeping the
// model's own spelling of values that mean the same thing.
func (m *PoolResourceModel) observe(ctx context.Context, status backend.PoolStatus) diag.Diagnostics {
	prior, diags := m.hosts(ctx)
	m.ID = types.StringValue(status.Spec.Name)
	m.Name = types.StringValue(status.Spec.Name)
	m.Strategy = types.StringValue(status.Spec.Strategy)
	if status.Spec.Strategy == "" {
		m.Strategy = types.StringValue(defaultStrategy)
	}
	hosts := make(map[string]attr.Value, len(status.Spec.Hosts))
	for name, spec := range status.Spec.Hosts {
		old, hadPrior := prior[name]
		h := poolHostModel{
			Labels:        types.MapNull(types.StringType),
			CPU:           types.Float64Null(),
			Memory:        types.StringNull(),
			MaxContainers: types.Int64Null(),
			PortRange:     portRangeValue(old.PortRange, spec.PortMin, spec.PortMax),
			Schedulable:   types.BoolValue(!spec.Cordoned),
			Lost:          types.BoolValue(spec.Lost),
			Disk:          types.StringNull(),
			GPUs:          types.Int64Null(),
			GPUIDs:        types.ListNull(types.StringType),
		}
		if spec.DiskBytes > 0 {
			h.Disk = memoryValue(old.Disk, spec.DiskBytes)
		}
		if spec.GPUs > 0 || (hadPrior && isKnown(old.GPUs)) {
			h.GPUs = types.Int64Value(int64(spec.GPUs))
		}
		if spec.GPUIDs != nil {
			value, d := types.ListValueFrom(ctx, types.StringType, spec.GPUIDs)
			diags.Append(d...)
			h.GPUIDs = value
		}
		if spec.Labels != nil || (hadPrior && !old.Labels.IsNull()) {
			// `labels = {}` stays {}: null would plan a change against it forever.
			labels := map[string]string{}
			maps.Copy(labels, spec.Labels)
			value, d := types.MapValueFrom(ctx, types.StringType, labels)
			diags.Append(d...)
			h.Labels = value
		}
		if spec.MilliCPU > 0 {
			h.CPU = cpuValue(old.CPU, spec.MilliCPU)
		}
		if spec.MemoryBytes > 0 {
			h.Memory = memoryValue(old.Memory, spec.MemoryBytes)
		}
		if spec.MaxContainers > 0 {
			h.MaxContainers = types.Int64Value(int64(spec.MaxContainers))
		}
		if info, ok := status.Discovered[name]; ok {
			h.DiscoveredCPUs = types.Int64Value(int64(info.NCPU))
			h.DiscoveredMemory = types.Int64Value(info.MemTotal)
			h.EngineVersion = types.StringValue(info.ServerVersion)
			h.APIVersion = types.StringValue(info.APIVersion)
		} else if hadPrior && isKnown(old.DiscoveredCPUs) { // not rediscovered: keep what we knew
			h.DiscoveredCPUs, h.DiscoveredMemory = old.DiscoveredCPUs, old.DiscoveredMemory
			h.EngineVersion, h.APIVersion = old.EngineVersion, old.APIVersion
		} else {
			h.DiscoveredCPUs, h.DiscoveredMemory = types.Int64Null(), types.Int64Null()
			h.EngineVersion, h.APIVersion = types.StringNull(), types.StringNull()
		}
		obj, d := types.ObjectValueFrom(ctx, poolHostAttrTypes, h)
		diags.Append(d...)
		hosts[name] = obj
	}
	hostsValue, d := types.MapValue(types.ObjectType{AttrTypes: poolHostAttrTypes}, hosts)
	diags.Append(d...)
	m.Hosts = hostsValue
	return diags
}

// keepPriorWhereSame plans prior values where the plan means the same.
// A host's memory or port range spelled differently ("0.25GiB" after
// "256MiB") plans the prior spelling: Terraform accepts a planned value
// equal to the prior one in place of the configured one. And when nothing
// else changes, the discovered values of state are kept: the framework
// marks them unknown as soon as the configuration differs from state. A
// real update leaves them unknown, since apply discovers again and engines
// change (a Docker upgrade, added memory).
func (m *PoolResourceModel) keepPriorWhereSame(ctx context.Context, state PoolResourceModel) diag.Diagnostics {
	if m.Hosts.IsUnknown() {
		return nil
	}
	planned, diags := m.hosts(ctx)
	prior, d := state.hosts(ctx)
	diags.Append(d...)
	if diags.HasError() {
		return diags
	}
	settled := make(map[string]poolHostModel, len(planned))
	for name, h := range planned {
		old, ok := prior[name]
		if !ok {
			continue
		}
		if !h.Memory.Equal(old.Memory) && sameMemory(h.Memory, old.Memory) {
			h.Memory = old.Memory
		}
		if !h.Disk.Equal(old.Disk) && sameMemory(h.Disk, old.Disk) {
			h.Disk = old.Disk
		}
		if !h.PortRange.Equal(old.PortRange) && samePortRange(h.PortRange, old.PortRange) {
			h.PortRange = old.PortRange
		}
		planned[name] = h
		h.DiscoveredCPUs, h.DiscoveredMemory = old.DiscoveredCPUs, old.DiscoveredMemory
		h.EngineVersion, h.APIVersion = old.EngineVersion, old.APIVersion
		settled[name] = h
	}
	hostType := types.ObjectType{AttrTypes: poolHostAttrTypes}
	hosts, d := types.MapValueFrom(ctx, hostType, planned)
	diags.Append(d...)
	unchanged, d := types.MapValueFrom(ctx, hostType, settled)
	diags.Append(d...)
	if diags.HasError() {
		return diags
	}
	m.Hosts = hosts
	// A host that joins leaves the others settled but is a change itself.
	if len(settled) == len(planned) && unchanged.Equal(state.Hosts) && m.Name.Equal(state.Name) && m.Strategy.Equal(state.Strategy) {
		m.Hosts = unchanged
	}
	return diags
}

// samePortRange reports whether two known port ranges are equal.
func samePortRange(a, b types.String) bool {
	if !isKnown(a) || !isKnown(b) {
		return false
	}
	alo, ahi, aerr := parsePortRange(a.ValueString())
	blo, bhi, berr := parsePortRange(b.ValueString())
	return aerr == nil && berr == nil && alo == blo && ahi == bhi
}

// portRangeValue keeps the prior spelling of an equal range; a zero range
// means the default.
func portRangeValue(prior types.String, lo, hi int) types.String {
	if lo == 0 && hi == 0 {
		lo, hi = scheduler.DefaultPortRange.Min, scheduler.DefaultPortRange.Max
	}
	if isKnown(prior) {
		if plo, phi, err := parsePortRange(prior.ValueString()); err == nil && plo == lo && phi == hi {
			return prior
		}
	}
	return types.StringValue(fmt.Sprintf("%d-%d", lo, hi))
}
