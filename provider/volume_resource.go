package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

var (
	_ resource.Resource                = (*VolumeResource)(nil)
	_ resource.ResourceWithConfigure   = (*VolumeResource)(nil)
	_ resource.ResourceWithImportState = (*VolumeResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*VolumeResource)(nil)
)

// NewVolumeResource is the berth_volume constructor.
func NewVolumeResource() resource.Resource {
	return &VolumeResource{}
}

// VolumeResource is berth_volume: a named Docker volume on one host of a
// pool, placed by the scheduler and labelled so that any process finds it.
type VolumeResource struct {
	data *providerData
}

func (r *VolumeResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_volume"
}

func (r *VolumeResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	replaceString := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	replaceMap := []planmodifier.Map{mapplanmodifier.RequiresReplace()}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A named Docker volume on one host of a pool. Berth places it like a container " +
			"(`constraints`, `spread_group`, or pinned with `host`) and reserves its `size` against the " +
			"host's `disk`. Data decides placement: a container that mounts it " +
			"(`mounts = [{ type = \"volume\", source = berth_volume.NAME.name, target = ... }]`) lands on its " +
			"host, and so does every replacement of that container; when the host cannot take it, the plan " +
			"fails naming the volume and the host. Destroying a volume that a container still mounts is " +
			"refused, naming the container. A Docker volume cannot change, so changing any attribute " +
			"replaces the volume, **and its data is lost**: protect data with " +
			"`lifecycle { prevent_destroy = true }`. The Docker volume is named `name` on its host. " +
			"Import with `<pool>/<name>`.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "`<pool>/<name>`.",
				Computed:            true,
				PlanModifiers:       keepStableString,
			},
			"pool": schema.StringAttribute{
				MarkdownDescription: "Pool the volume belongs to (a `berth_pool`'s `id` or name).",
				Required:            true,
				Validators:          []validator.String{poolNameValidator()},
				PlanModifiers:       replaceString,
			},
			"name": schema.StringAttribute{
				MarkdownDescription: "Name, unique within the pool; also the Docker volume's name on its host. " +
					"Containers mount it with `source = berth_volume.NAME.name`.",
				Required:      true,
				Validators:    []validator.String{containerNameValidator()},
				PlanModifiers: replaceString,
			},
			"driver": schema.StringAttribute{
				MarkdownDescription: "Docker volume driver; `local` (Docker's own) by default.",
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString(defaultVolumeDriver),
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
				PlanModifiers:       replaceString,
			},
			"driver_opts": schema.MapAttribute{
				MarkdownDescription: "Driver options, as `docker volume create --opt`: for example " +
					"`{ type = \"tmpfs\", device = \"tmpfs\", o = \"size=100m\" }` with the `local` driver.",
				ElementType:   types.StringType,
				Optional:      true,
				Validators:    []validator.Map{mapvalidator.KeysAre(stringvalidator.LengthAtLeast(1))},
				PlanModifiers: replaceMap,
			},
			"labels": schema.MapAttribute{
				MarkdownDescription: "Docker labels on the volume. Keys under `sh.berth.` are Berth's own and refused.",
				ElementType:         types.StringType,
				Optional:            true,
				Validators:          []validator.Map{mapvalidator.KeysAre(labelKeyValidator())},
				PlanModifiers:       replaceMap,
			},
			"size": schema.StringAttribute{
				MarkdownDescription: "Disk reserved for the volume against its host's `disk` (a `berth_pool` host " +
					"setting), e.g. `\"50GiB\"`. It is accounted, not enforced: Docker's `local` driver does not " +
					"cap a volume (use `driver_opts` for that where the filesystem allows). Unset: the volume " +
					"reserves no disk.",
				Optional:      true,
				Validators:    []validator.String{diskValidator()},
				PlanModifiers: replaceString,
			},
			"spread_group": schema.StringAttribute{
				MarkdownDescription: "Volumes with the same spread group are spread across hosts (volumes spread " +
					"among volumes, apart from containers' groups of the same name).",
				Optional:      true,
				PlanModifiers: replaceString,
			},
			"constraints": schema.ListAttribute{
				MarkdownDescription: "Rules on host labels, as `berth_container`'s `constraints` (`zone == a`, " +
					"`disk in [ssd, nvme]`, `~zone == b` for a preference).",
				ElementType:   types.StringType,
				Optional:      true,
				Validators:    []validator.List{listvalidator.ValueStringsAre(constraintValidator())},
				PlanModifiers: []planmodifier.List{listplanmodifier.RequiresReplace()},
			},
			"host": schema.StringAttribute{
				MarkdownDescription: "The engine the volume lives on. Set it to pin the volume; otherwise Berth " +
					"chooses at apply (the plan shows \"known after apply\"; with berthd too, since a volume " +
					"holds no lease). Setting a different host replaces the volume; removing the setting keeps it.",
				Optional: true,
				Computed: true,
				PlanModifiers: []planmodifier.String{
					stringplanmodifier.UseStateForUnknown(),
					stringplanmodifier.RequiresReplaceIf(pinnedElsewhere,
						"Replaces the volume when it is pinned to another host.",
						"Replaces the volume when it is pinned to another host."),
				},
			},
		},
	}
}

func (r *VolumeResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	data, diags := providerDataFrom(req.ProviderData)
	resp.Diagnostics.Append(diags...)
	r.data = data
}

func (r *VolumeResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan VolumeResourceModel
	be, diags := r.data.load(ctx, req.Plan, &plan)
	resp.Diagnostics.Append(diags...)
	spec := plan.spec(ctx, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	created, err := be.CreateVolume(ctx, spec)
	if err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Cannot create volume %s/%s", spec.Pool, spec.Name), err.Error())
		return
	}
	plan.observe(ctx, created, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

// Read inspects the volume on its host; an imported one (no host yet) is
// looked up on every host of the pool. A volume gone from its host is
// removed from state, so the plan creates it again (empty).
func (r *VolumeResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state VolumeResourceModel
	be, diags := r.data.load(ctx, req.State, &state)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	var observed *backend.VolumeState
	var err error
	if isKnown(state.Host) {
		observed, err = be.ReadVolume(ctx, state.ref())
	} else {
		observed, err = be.FindVolume(ctx, state.Pool.ValueString(), state.Name.ValueString())
	}
	if err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Cannot read volume %s", state.ID.ValueString()), err.Error())
		return
	}
	if observed == nil {
		resp.State.RemoveResource(ctx)
		return
	}
	state.observe(ctx, *observed, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
}

// Update has nothing to change on the engine: every attribute but an
// unpinned host replaces the volume, and unpinning keeps it where it is.
func (r *VolumeResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state VolumeResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	plan.Host = state.Host
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

func (r *VolumeResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state VolumeResourceModel
	be, diags := r.data.load(ctx, req.State, &state)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := be.DeleteVolume(ctx, state.ref()); err != nil {
		resp.Diagnostics.AddError(fmt.Sprintf("Cannot delete volume %s", state.ID.ValueString()), err.Error())
	}
}

// ImportState takes "<pool>/<name>"; Read finds the volume's host.
func (r *VolumeResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	importPoolMember(ctx, req, resp, "terraform import berth_volume.pgdata dc1/pgdata")
}

// replacesVolumeKey is the private-state key through which the plan of a
// replacement's destroy half tells its create half (planned with no prior
// state) that the volume of that name is being replaced.
const replacesVolumeKey = "replaces-volume"

// ModifyPlan makes the id known and checks at plan time that a new volume
// fits: the error explains why it does not. The check also tells
// containers planned next in this process where the volume goes.
func (r *VolumeResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || req.Plan.Raw.Equal(req.State.Raw) { // destroy, or unchanged
		return
	}
	var plan VolumeResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if isKnown(plan.Pool) && isKnown(plan.Name) {
		plan.ID = types.StringValue(plan.Pool.ValueString() + "/" + plan.Name.ValueString())
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("id"), plan.ID)...)
	}
	if !req.State.Raw.IsNull() {
		if len(resp.RequiresReplace) > 0 {
			resp.Diagnostics.Append(resp.Private.SetKey(ctx, replacesVolumeKey, []byte(`true`))...)
		}
		return // the create half of a replacement is planned next, with no prior state
	}
	be := r.data.planBackend()
	if be == nil || !req.Config.Raw.IsFullyKnown() || resp.Diagnostics.HasError() {
		return
	}
	replacing := false
	if req.Private != nil {
		marker, diags := req.Private.GetKey(ctx, replacesVolumeKey)
		resp.Diagnostics.Append(diags...)
		replacing = len(marker) > 0
		resp.Diagnostics.Append(resp.Private.SetKey(ctx, replacesVolumeKey, nil)...)
	}
	spec := plan.spec(ctx, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	result, err := be.PlanVolume(ctx, spec, replacing)
	switch {
	case err != nil:
		addVolumeError(&resp.Diagnostics, fmt.Sprintf("Volume %s/%s does not fit", spec.Pool, spec.Name), err)
	case result.Host != "":
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("host"), result.Host)...)
	}
	addSkippedWarnings(&resp.Diagnostics, result.Warnings)
}

// addVolumeError files a plan-time volume error on the attribute to fix.
func addVolumeError(diags *diag.Diagnostics, summary string, err error) {
	attribute := path.Root("size")
	if errors.Is(err, backend.ErrDuplicateName) {
		attribute = path.Root("name")
	}
	diags.AddAttributeError(attribute, summary, err.Error())
}
