package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/float64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/float64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/objectplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

var (
	_ resource.Resource                = (*ContainerResource)(nil)
	_ resource.ResourceWithConfigure   = (*ContainerResource)(nil)
	_ resource.ResourceWithImportState = (*ContainerResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*ContainerResource)(nil)
)

// Defaults of berth_container.
const (
	defaultCPU           = 0.25
	defaultMemory        = "128MiB"
	defaultRestart       = "unless-stopped"
	defaultStopTimeout   = "10s"
	defaultCreateTimeout = 5 * time.Minute
	defaultUpdateTimeout = 5 * time.Minute
	defaultDeleteTimeout = 2 * time.Minute
)

// NewContainerResource is the berth_container constructor.
func NewContainerResource() resource.Resource {
	return &ContainerResource{}
}

// ContainerResource is berth_container: one container that Berth places on
// a host of a pool.
type ContainerResource struct {
	data *providerData
}

// ContainerResourceModel is berth_container's configuration and state.
type ContainerResourceModel struct {
	ID             types.String   `tfsdk:"id"`
	Pool           types.String   `tfsdk:"pool"`
	Name           types.String   `tfsdk:"name"`
	Image          types.String   `tfsdk:"image"`
	Command        types.List     `tfsdk:"command"`
	Env            types.Map      `tfsdk:"env"`
	CPU            types.Float64  `tfsdk:"cpu"`
	Memory         types.String   `tfsdk:"memory"`
	Ports          types.List     `tfsdk:"ports"` // of portModel
	Constraints    types.List     `tfsdk:"constraints"`
	SpreadGroup    types.String   `tfsdk:"spread_group"`
	MaxPerHost     types.Int64    `tfsdk:"max_per_host"`
	Restart        types.String   `tfsdk:"restart"`
	Host           types.String   `tfsdk:"host"`
	Healthcheck    types.Object   `tfsdk:"healthcheck"`   // healthcheckModel
	RegistryAuth   types.Object   `tfsdk:"registry_auth"` // registryAuthModel
	Running        types.Bool     `tfsdk:"running"`
	StopTimeout    types.String   `tfsdk:"stop_timeout"`
	Timeouts       timeouts.Value `tfsdk:"timeouts"`
	ContainerID    types.String   `tfsdk:"container_id"`
	IPAddress      types.String   `tfsdk:"ip_address"`
	PublishedPorts types.List     `tfsdk:"published_ports"` // of portModel
	ReservationID  types.String   `tfsdk:"reservation_id"`
}

// portModel is one entry of ports and published_ports.
type portModel struct {
	Internal types.Int64  `tfsdk:"internal"`
	External types.Int64  `tfsdk:"external"`
	Protocol types.String `tfsdk:"protocol"`
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
	portAttrTypes = map[string]attr.Type{
		"internal": types.Int64Type,
		"external": types.Int64Type,
		"protocol": types.StringType,
	}
	portObjectType    = types.ObjectType{AttrTypes: portAttrTypes}
	timeoutsAttrTypes = map[string]attr.Type{"create": types.StringType, "update": types.StringType, "delete": types.StringType}
	healthcheckTypes  = map[string]attr.Type{"test": types.ListType{ElemType: types.StringType}, "interval": types.StringType, "timeout": types.StringType, "start_period": types.StringType, "retries": types.Int64Type}
	registryAuthTypes = map[string]attr.Type{"server_address": types.StringType, "username": types.StringType, "password": types.StringType}
	replaceIfChanged  = []planmodifier.String{stringplanmodifier.RequiresReplace()}
	keepStableString  = []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
)

func (r *ContainerResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_container"
}

func (r *ContainerResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	portAttributes := func(computed bool) map[string]schema.Attribute {
		if computed {
			return map[string]schema.Attribute{
				"internal": schema.Int64Attribute{MarkdownDescription: "Port inside the container.", Computed: true},
				"external": schema.Int64Attribute{MarkdownDescription: "Host port it is published on.", Computed: true},
				"protocol": schema.StringAttribute{MarkdownDescription: "`tcp` or `udp`.", Computed: true},
			}
		}
		return map[string]schema.Attribute{
			"internal": schema.Int64Attribute{
				MarkdownDescription: "Port inside the container (1-65535).",
				Required:            true,
				Validators:          []validator.Int64{int64validator.Between(1, 65535)},
			},
			"external": schema.Int64Attribute{
				MarkdownDescription: "Host port to publish on; `0` (the default) lets Berth pick a free port " +
					"from the host's `port_range`, distinct per host. See `published_ports` for the result.",
				Optional:   true,
				Computed:   true,
				Default:    int64default.StaticInt64(0),
				Validators: []validator.Int64{int64validator.Between(0, 65535)},
			},
			"protocol": schema.StringAttribute{
				MarkdownDescription: "`tcp` (the default) or `udp`.",
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString("tcp"),
				Validators:          []validator.String{stringvalidator.OneOf("tcp", "udp")},
			},
		}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A Docker container placed by Berth on a host of a pool. Placement happens at apply, " +
			"atomically among all the creates Terraform runs in parallel; `terraform plan` checks that everything " +
			"planned fits and explains why when it does not. Changing anything but `cpu`, `memory`, `running`, " +
			"`stop_timeout`, `registry_auth` and `timeouts` replaces the container.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "`<pool>/<name>`, also the import ID.",
				Computed:            true,
				PlanModifiers:       keepStableString,
			},
			"pool": schema.StringAttribute{
				MarkdownDescription: "The pool to place the container in: `berth_pool.x.id` or the pool's name.",
				Required:            true,
				Validators:          []validator.String{poolNameValidator()},
				PlanModifiers:       replaceIfChanged,
			},
			"name": schema.StringAttribute{
				MarkdownDescription: "Name, unique within the pool: 1-128 letters, digits, `_` and `-`, starting " +
					"with a letter or digit (Docker's rule without dots).",
				Required:      true,
				Validators:    []validator.String{containerNameValidator()},
				PlanModifiers: replaceIfChanged,
			},
			"image": schema.StringAttribute{
				MarkdownDescription: "Image to run, e.g. `nginx:1.27`. Pulled when missing from the host.",
				Required:            true,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
				PlanModifiers:       replaceIfChanged,
			},
			"command": schema.ListAttribute{
				MarkdownDescription: "Command and arguments; the image's default when unset.",
				ElementType:         types.StringType,
				Optional:            true,
				PlanModifiers:       []planmodifier.List{listplanmodifier.RequiresReplace()},
			},
			"env": schema.MapAttribute{
				MarkdownDescription: "Environment variables.",
				ElementType:         types.StringType,
				Optional:            true,
				PlanModifiers:       []planmodifier.Map{mapplanmodifier.RequiresReplace()},
			},
			"cpu": schema.Float64Attribute{
				MarkdownDescription: "CPUs reserved for the container and its CPU limit; fractional, at least " +
					"0.001. Defaults to `0.25`. Changed in place when the host still fits it, otherwise the " +
					"container is replaced (the plan warns why).",
				Optional:   true,
				Computed:   true,
				Default:    float64default.StaticFloat64(defaultCPU),
				Validators: []validator.Float64{float64validator.AtLeast(0.001)},
			},
			"memory": schema.StringAttribute{
				MarkdownDescription: "Memory reserved for the container and its memory limit, e.g. `\"256MiB\"` " +
					"(binary units). Defaults to `\"128MiB\"`. Changed in place when the host still fits it, " +
					"otherwise the container is replaced (the plan warns why).",
				Optional:   true,
				Computed:   true,
				Default:    stringdefault.StaticString(defaultMemory),
				Validators: []validator.String{memoryValidator()},
			},
			"ports": schema.ListNestedAttribute{
				MarkdownDescription: "Ports to publish on the host. Non-zero external ports must be unique per protocol.",
				Optional:            true,
				Validators:          []validator.List{uniqueExternalPorts{}},
				PlanModifiers:       []planmodifier.List{portsModifier{}},
				NestedObject:        schema.NestedAttributeObject{Attributes: portAttributes(false)},
			},
			"constraints": schema.ListAttribute{
				MarkdownDescription: "Rules on host labels, all of which a host must satisfy: `zone == a`, " +
					"`zone != c`, `disk in [ssd, nvme]`, `zone not in [c]`, `gpu` (has the label), `!gpu` " +
					"(lacks it); `node.name` is the host's name; values may be globs (`rack-*`). A leading `~` " +
					"makes a rule a preference instead of a requirement.",
				ElementType:   types.StringType,
				Optional:      true,
				Validators:    []validator.List{listvalidator.ValueStringsAre(constraintValidator())},
				PlanModifiers: []planmodifier.List{listplanmodifier.RequiresReplace()},
			},
			"spread_group": schema.StringAttribute{
				MarkdownDescription: "Containers with the same spread group are spread across hosts (anti-affinity).",
				Optional:            true,
				PlanModifiers:       replaceIfChanged,
			},
			"max_per_host": schema.Int64Attribute{
				MarkdownDescription: "Most containers of the same `spread_group` on one host.",
				Optional:            true,
				Validators:          []validator.Int64{int64validator.AtLeast(1)},
				PlanModifiers:       []planmodifier.Int64{int64planmodifier.RequiresReplace()},
			},
			"restart": schema.StringAttribute{
				MarkdownDescription: "Docker restart policy: `no`, `on-failure`, `always` or `unless-stopped` (the default).",
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString(defaultRestart),
				Validators:          []validator.String{stringvalidator.OneOf("no", "on-failure", "always", "unless-stopped")},
				PlanModifiers:       replaceIfChanged,
			},
			"host": schema.StringAttribute{
				MarkdownDescription: "The engine the container runs on. Set it to pin the container to a host; " +
					"otherwise Berth chooses at apply and the plan shows \"known after apply\". Setting a " +
					"different host replaces the container; removing the setting keeps it where it is.",
				Optional: true,
				Computed: true,
				PlanModifiers: []planmodifier.String{
					stringplanmodifier.UseStateForUnknown(),
					stringplanmodifier.RequiresReplaceIf(pinnedElsewhere,
						"Replaces the container when it is pinned to another host.",
						"Replaces the container when it is pinned to another host."),
				},
			},
			"healthcheck": schema.SingleNestedAttribute{
				MarkdownDescription: "Docker healthcheck. When set, creating and starting wait until the " +
					"container is healthy.",
				Optional:      true,
				PlanModifiers: []planmodifier.Object{objectplanmodifier.RequiresReplace()},
				Attributes: map[string]schema.Attribute{
					"test": schema.ListAttribute{
						MarkdownDescription: "Test command, e.g. `[\"CMD\", \"/app\", \"-check\"]` or `[\"CMD-SHELL\", \"curl -f localhost\"]`.",
						ElementType:         types.StringType,
						Required:            true,
						Validators:          []validator.List{listvalidator.SizeAtLeast(1)},
					},
					"interval": schema.StringAttribute{
						MarkdownDescription: "Time between checks, e.g. `\"10s\"`.",
						Optional:            true,
						Validators:          []validator.String{durationValidator()},
					},
					"timeout": schema.StringAttribute{
						MarkdownDescription: "Time a check may take, e.g. `\"3s\"`.",
						Optional:            true,
						Validators:          []validator.String{durationValidator()},
					},
					"start_period": schema.StringAttribute{
						MarkdownDescription: "Grace period after start during which failures do not count.",
						Optional:            true,
						Validators:          []validator.String{durationValidator()},
					},
					"retries": schema.Int64Attribute{
						MarkdownDescription: "Consecutive failures before the container is unhealthy.",
						Optional:            true,
						Validators:          []validator.Int64{int64validator.AtLeast(0)},
					},
				},
			},
			"registry_auth": schema.SingleNestedAttribute{
				MarkdownDescription: "Credentials for pulling `image` from a private registry.",
				Optional:            true,
				Attributes: map[string]schema.Attribute{
					"server_address": schema.StringAttribute{
						MarkdownDescription: "Registry address, e.g. `registry.example.com:5000`.",
						Required:            true,
					},
					"username": schema.StringAttribute{
						MarkdownDescription: "User name.",
						Required:            true,
					},
					"password": schema.StringAttribute{
						MarkdownDescription: "Password or token.",
						Required:            true,
						Sensitive:           true,
					},
				},
			},
			"running": schema.BoolAttribute{
				MarkdownDescription: "Whether the container should run. A container found stopped while this is " +
					"`true` (the default) plans a start; `false` stops it (within `stop_timeout`) and keeps it, and " +
					"its reserved capacity, on its host.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(true),
			},
			"stop_timeout": schema.StringAttribute{
				MarkdownDescription: "How long the container may take to stop before it is killed, on delete " +
					"and replace. Defaults to `\"10s\"`.",
				Optional:   true,
				Computed:   true,
				Default:    stringdefault.StaticString(defaultStopTimeout),
				Validators: []validator.String{durationValidator()},
			},
			"container_id": schema.StringAttribute{
				MarkdownDescription: "The Docker container ID.",
				Computed:            true,
				PlanModifiers:       keepStableString,
			},
			"ip_address": schema.StringAttribute{
				MarkdownDescription: "The container's IP address on its engine's network; empty without one.",
				Computed:            true,
				PlanModifiers:       keepStableString,
			},
			"published_ports": schema.ListNestedAttribute{
				MarkdownDescription: "Ports as published, with the host ports Berth picked for `external = 0`.",
				Computed:            true,
				PlanModifiers:       []planmodifier.List{listplanmodifier.UseStateForUnknown()},
				NestedObject:        schema.NestedAttributeObject{Attributes: portAttributes(true)},
			},
			"reservation_id": schema.StringAttribute{
				MarkdownDescription: "ID of the capacity reservation that holds the container's place.",
				Computed:            true,
				PlanModifiers:       keepStableString,
			},
		},
		Blocks: map[string]schema.Block{
			"timeouts": timeouts.Block(ctx, timeouts.Opts{
				Create: true, Update: true, Delete: true,
				CreateDescription: "Time to place, pull, create and start the container (and wait until healthy). Default `5m`.",
				UpdateDescription: "Time to resize or start the container. Default `5m`.",
				DeleteDescription: "Time to stop and remove the container. Default `2m`.",
			}),
		},
	}
}

// pinnedElsewhere: a configured host that differs from the one in state
// means moving the container, which only a replacement can do.
func pinnedElsewhere(_ context.Context, req planmodifier.StringRequest, resp *stringplanmodifier.RequiresReplaceIfFuncResponse) {
	resp.RequiresReplace = isKnown(req.ConfigValue) && isKnown(req.StateValue) && !req.ConfigValue.Equal(req.StateValue)
}

// portsModifier replaces the container when its ports change. A configured
// external = 0 means "any port", which the port already picked satisfies,
// so an imported container (whose state records the picked port) plans no
// change.
type portsModifier struct{}

func (portsModifier) Description(context.Context) string {
	return "Changing ports replaces the container; external = 0 accepts the port already picked."
}

func (m portsModifier) MarkdownDescription(ctx context.Context) string { return m.Description(ctx) }

func (portsModifier) PlanModifyList(ctx context.Context, req planmodifier.ListRequest, resp *planmodifier.ListResponse) {
	if req.State.Raw.IsNull() || req.Plan.Raw.IsNull() || req.PlanValue.Equal(req.StateValue) {
		return // create, destroy or no change
	}
	if isKnown(req.PlanValue) && isKnown(req.StateValue) {
		var planned, prior []portModel
		diags := req.PlanValue.ElementsAs(ctx, &planned, false)
		diags.Append(req.StateValue.ElementsAs(ctx, &prior, false)...)
		if !diags.HasError() && portsSatisfiedBy(planned, prior) {
			resp.PlanValue = req.StateValue
			return
		}
	}
	resp.RequiresReplace = true
}

// portsSatisfiedBy reports whether existing ports meet the wanted ones.
func portsSatisfiedBy(want, have []portModel) bool {
	if len(want) != len(have) {
		return false
	}
	for i, w := range want {
		h := have[i]
		if !w.Internal.Equal(h.Internal) || !w.Protocol.Equal(h.Protocol) ||
			(!w.External.Equal(h.External) && w.External.ValueInt64() != 0) {
			return false
		}
	}
	return true
}

func (r *ContainerResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	data, diags := providerDataFrom(req.ProviderData)
	resp.Diagnostics.Append(diags...)
	r.data = data
}

func (r *ContainerResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan ContainerResourceModel
	be, diags := r.data.load(ctx, req.Plan, &plan)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, defaultCreateTimeout)
	resp.Diagnostics.Append(diags...)
	spec, diags := plan.spec(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	created, err := be.CreateContainer(ctx, spec)
	if err != nil {
		addContainerError(&resp.Diagnostics, fmt.Sprintf("Cannot create container %s", plan.ID.ValueString()), err)
		if created.Ref.ContainerID != "" {
			// Left on an engine that stopped answering: tracked, tainted by
			// Terraform, replaced by the next apply; never leaked.
			resp.Diagnostics.Append(resp.Private.SetKey(ctx, leftoverKey, []byte("true"))...)
			resp.Diagnostics.Append(plan.observe(created)...)
			resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
		}
		return
	}
	wantRunning := plan.Running.ValueBool()
	resp.Diagnostics.Append(plan.observe(created)...)
	if !wantRunning {
		// Created, started once (so a broken image fails the create), then
		// stopped as configured.
		resp.Diagnostics.Append(r.stop(ctx, be, created, &plan)...)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

// Read observes the container and never changes anything on the engine.
func (r *ContainerResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state ContainerResourceModel
	be, diags := r.data.load(ctx, req.State, &state)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	observed, err := be.ReadContainer(ctx, state.ref())
	if err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Cannot read container %s", state.ID.ValueString()), err.Error())
		return
	}
	if observed == nil { // removed out of band: plan a re-create
		resp.State.RemoveResource(ctx)
		return
	}
	if left, diags := req.Private.GetKey(ctx, leftoverKey); len(left) > 0 && r.data != nil {
		r.data.leftovers.remember(state.ID.ValueString(), state.ref())
	} else {
		resp.Diagnostics.Append(diags...)
	}
	resp.Diagnostics.Append(state.observe(*observed)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
}

// Update resizes in place and starts or stops the container; everything
// else either replaces the container or lives only in state.
func (r *ContainerResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state ContainerResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	be, diags := r.data.load(ctx, req.Plan, &plan)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Update(ctx, defaultUpdateTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	// Only what an operation changes is taken from its result: every other
	// computed value was planned from state and must come out the same.
	current := state.current()
	if want := plan.resources(); want != current.Resources {
		resized, err := be.ResizeContainer(ctx, current, want)
		if err != nil {
			resp.Diagnostics.AddError(fmt.Sprintf("Cannot resize container %s", state.ID.ValueString()), err.Error())
			return
		}
		current.Resources = resized.Resources
		current.Ref.Resources = resized.Resources
		plan.CPU = cpuValue(plan.CPU, resized.Resources.MilliCPU)
		plan.Memory = memoryValue(plan.Memory, resized.Resources.MemoryBytes)
	}
	switch {
	case plan.Running.ValueBool() && !state.Running.ValueBool():
		started, err := be.StartContainer(ctx, current, !plan.Healthcheck.IsNull())
		if err != nil {
			resp.Diagnostics.AddError(fmt.Sprintf("Cannot start container %s", state.ID.ValueString()), err.Error())
			return
		}
		plan.Running = types.BoolValue(started.Running)
		plan.IPAddress = types.StringValue(started.IPAddress)
	case !plan.Running.ValueBool() && state.Running.ValueBool():
		resp.Diagnostics.Append(r.stop(ctx, be, current, &plan)...)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

// stop stops the container and records that in model.
func (r *ContainerResource) stop(ctx context.Context, be backend.Backend, current backend.ContainerState, model *ContainerResourceModel) diag.Diagnostics {
	var diags diag.Diagnostics
	stopped, err := be.StopContainer(ctx, current, model.stopTimeout())
	if err != nil {
		diags.AddError(fmt.Sprintf("Cannot stop container %s", model.ID.ValueString()), err.Error())
		return diags
	}
	model.Running = types.BoolValue(stopped.Running)
	model.IPAddress = types.StringValue(stopped.IPAddress)
	return diags
}

func (r *ContainerResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state ContainerResourceModel
	be, diags := r.data.load(ctx, req.State, &state)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := state.Timeouts.Delete(ctx, defaultDeleteTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stop := state.stopTimeout()
	if err := be.DeleteContainer(ctx, state.ref(), stop); err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Cannot delete container %s", state.ID.ValueString()), err.Error())
	}
}

// ImportState takes "<pool>/<name>" and rebuilds the whole state from the
// container's labels.
func (r *ContainerResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	pool, name, ok := strings.Cut(req.ID, "/")
	if !ok || !poolNameRegexp.MatchString(pool) || !containerNameRegexp.MatchString(name) {
		resp.Diagnostics.AddError("Invalid import ID",
			fmt.Sprintf("%q is not <pool>/<name>: use e.g. terraform import berth_container.web dc1/web-3", req.ID))
		return
	}
	be, diags := r.data.requireBackend()
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	found, err := be.FindContainer(ctx, pool, name)
	if err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Cannot look up container %s", req.ID), err.Error())
		return
	}
	if found == nil {
		resp.Diagnostics.AddError("Container not found",
			fmt.Sprintf("No Berth container named %q in pool %q on the provider's engines.", name, pool))
		return
	}
	model, diags := importedModel(ctx, *found)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, model)...)
}

// ModifyPlan makes the id known, keeps equivalent spellings of cpu and
// memory, checks at plan time that a new container fits (the error explains
// why it does not), and turns a resize that no longer fits its host into a
// replacement, with a warning saying why.
func (r *ContainerResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() { // destroy
		return
	}
	if req.Plan.Raw.Equal(req.State.Raw) {
		// Unchanged, as most containers of a plan are: nothing to check, and
		// decoding the model twice was most of this method's cost.
		return
	}
	var plan ContainerResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if isKnown(plan.Pool) && isKnown(plan.Name) {
		plan.ID = types.StringValue(plan.Pool.ValueString() + "/" + plan.Name.ValueString())
	}
	var state *ContainerResourceModel
	if !req.State.Raw.IsNull() {
		state = &ContainerResourceModel{}
		resp.Diagnostics.Append(req.State.Get(ctx, state)...)
		if resp.Diagnostics.HasError() {
			return
		}
		plan.keepEquivalentSizes(*state)
		if plan.Running.ValueBool() != state.Running.ValueBool() {
			plan.IPAddress = types.StringUnknown() // a restarted container may get a new address; a stopped one has none
		}
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, plan)...)

	be := r.data.planBackend()
	if be == nil || !req.Config.Raw.IsFullyKnown() || resp.Diagnostics.HasError() {
		return
	}
	switch {
	case state == nil:
		r.planCreate(ctx, be, plan, req, resp)
	case plan.replacesExisting(*state):
		resp.Diagnostics.Append(markReplacement(ctx, resp, *state)...)
	case plan.resources() != state.resources():
		r.planResize(ctx, be, plan, *state, resp)
	}
}

// replacesKey is the private-state key through which the plan of a
// replacement's destroy half tells its create half (which Terraform plans
// with no prior state) which container it replaces.
const replacesKey = "replaces"

func markReplacement(ctx context.Context, resp *resource.ModifyPlanResponse, state ContainerResourceModel) diag.Diagnostics {
	ref, err := json.Marshal(state.ref())
	if err != nil {
		var diags diag.Diagnostics
		diags.AddError("Cannot record the replaced container", err.Error())
		return diags
	}
	return resp.Private.SetKey(ctx, replacesKey, ref)
}

// replacedContainer reads what markReplacement recorded; ok is false for a
// plain create.
func replacedContainer(ctx context.Context, req resource.ModifyPlanRequest) (ref backend.ContainerRef, ok bool, diags diag.Diagnostics) {
	if req.Private == nil {
		return ref, false, diags
	}
	raw, diags := req.Private.GetKey(ctx, replacesKey)
	if len(raw) == 0 || diags.HasError() {
		return ref, false, diags
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		diags.AddError("Cannot read the replaced container", err.Error())
		return ref, false, diags
	}
	return ref, true, diags
}

func (r *ContainerResource) planCreate(ctx context.Context, be backend.Backend, plan ContainerResourceModel, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	spec, diags := plan.spec(ctx)
	resp.Diagnostics.Append(diags...)
	old, replacing, diags := replacedContainer(ctx, req)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	if !replacing && r.data != nil {
		old, replacing = r.data.leftovers.take(plan.ID.ValueString())
	}
	// The marker has served its purpose; keep it out of the new state.
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, replacesKey, nil)...)
	var result backend.PlanResult
	var err error
	if replacing {
		result, err = be.PlanReplacement(ctx, old, spec)
	} else {
		result, err = be.PlanContainer(ctx, spec)
	}
	if err != nil {
		addContainerError(&resp.Diagnostics, fmt.Sprintf("Container %s does not fit", plan.ID.ValueString()), err)
		return
	}
	if result.Host != "" {
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("host"), result.Host)...)
	}
}

// addContainerError files a plan or create error; a name taken in the pool
// is an error on the name attribute.
func addContainerError(diags *diag.Diagnostics, summary string, err error) {
	if errors.Is(err, backend.ErrDuplicateName) {
		diags.AddAttributeError(path.Root("name"), "Duplicate container name", err.Error())
		return
	}
	diags.AddError(summary, err.Error())
}

func (r *ContainerResource) planResize(ctx context.Context, be backend.Backend, plan, state ContainerResourceModel, resp *resource.ModifyPlanResponse) {
	fits, reason, err := be.PlanResize(ctx, state.current(), plan.resources())
	if err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Cannot check the resize of container %s", state.ID.ValueString()), err.Error())
		return
	}
	if fits {
		return
	}
	for _, p := range []struct {
		name    string
		changed bool
	}{{"cpu", !plan.CPU.Equal(state.CPU)}, {"memory", !plan.Memory.Equal(state.Memory)}} {
		if p.changed {
			resp.RequiresReplace.Append(path.Root(p.name))
		}
	}
	resp.Diagnostics.Append(markReplacement(ctx, resp, state)...)
	resp.Diagnostics.AddWarning(fmt.Sprintf("Container %s will be replaced to resize it", state.ID.ValueString()),
		fmt.Sprintf("The new size does not fit on host %q: %s. The container will be re-created where it fits.",
			state.Host.ValueString(), reason))
}

// replacesExisting reports whether an attribute that forces replacement
// changed; then the new size is checked as a create, not as a resize.
func (m ContainerResourceModel) replacesExisting(state ContainerResourceModel) bool {
	pairs := [][2]attr.Value{
		{m.Pool, state.Pool}, {m.Name, state.Name}, {m.Image, state.Image}, {m.Command, state.Command},
		{m.Env, state.Env}, {m.Ports, state.Ports}, {m.Constraints, state.Constraints},
		{m.SpreadGroup, state.SpreadGroup}, {m.MaxPerHost, state.MaxPerHost}, {m.Restart, state.Restart},
		{m.Healthcheck, state.Healthcheck}, {m.Host, state.Host},
	}
	for _, p := range pairs {
		if !p[0].Equal(p[1]) {
			return true
		}
	}
	return false
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
	return spec, diags
}

// observe records what the backend saw: placement, identity, network and
// the actual size (keeping the model's spelling when it means the same).
func (m *ContainerResourceModel) observe(c backend.ContainerState) diag.Diagnostics {
	m.ID = types.StringValue(c.Ref.Pool + "/" + c.Ref.Name)
	m.Host = types.StringValue(c.Ref.Host)
	m.ContainerID = types.StringValue(c.Ref.ContainerID)
	m.ReservationID = types.StringValue(c.ReservationID)
	m.IPAddress = types.StringValue(c.IPAddress)
	m.Running = types.BoolValue(c.Running)
	m.CPU = cpuValue(m.CPU, c.Resources.MilliCPU)
	m.Memory = memoryValue(m.Memory, c.Resources.MemoryBytes)
	published := make([]attr.Value, 0, len(c.Ports))
	var diags diag.Diagnostics
	for _, p := range c.Ports {
		obj, d := types.ObjectValue(portAttrTypes, map[string]attr.Value{
			"internal": types.Int64Value(int64(p.Internal)),
			"external": types.Int64Value(int64(p.External)),
			"protocol": types.StringValue(p.Protocol),
		})
		diags.Append(d...)
		published = append(published, obj)
	}
	ports, d := types.ListValue(portObjectType, published)
	diags.Append(d...)
	m.PublishedPorts = ports
	return diags
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
		Env:          types.MapNull(types.StringType),
		CPU:          types.Float64Null(),
		Memory:       types.StringNull(),
		Ports:        types.ListNull(portObjectType),
		Constraints:  types.ListNull(types.StringType),
		SpreadGroup:  types.StringNull(),
		MaxPerHost:   types.Int64Null(),
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
	if c.Healthcheck != nil {
		var d diag.Diagnostics
		m.Healthcheck, d = healthcheckValue(ctx, *c.Healthcheck)
		diags.Append(d...)
	}
	diags.Append(m.observe(c)...)
	if len(c.Ports) > 0 {
		m.Ports = m.PublishedPorts
	}
	return m, diags
}

// healthcheckValue renders an observed healthcheck the way it is written
// in configuration; unset durations and retries stay null.
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
		Retries:     types.Int64Null(),
	}
	if hc.Retries > 0 {
		model.Retries = types.Int64Value(int64(hc.Retries))
	}
	value, d := types.ObjectValueFrom(ctx, healthcheckTypes, model)
	diags.Append(d...)
	return value, diags
}
