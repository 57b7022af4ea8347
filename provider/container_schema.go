package provider

import (
	"context"
	"maps"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/float64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/objectplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

func (r *ContainerResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	portAttributes := func(computed bool) map[string]schema.Attribute {
		if computed {
			return map[string]schema.Attribute{
				"internal": schema.Int64Attribute{MarkdownDescription: "Port inside the container.", Computed: true},
				"external": schema.Int64Attribute{MarkdownDescription: "Host port it is published on.", Computed: true},
				"protocol": schema.StringAttribute{MarkdownDescription: "`tcp` or `udp`.", Computed: true},
				"ip": schema.StringAttribute{
					MarkdownDescription: "Host interface the port is bound to; null when bound to all of them.",
					Computed:            true,
				},
				"address": schema.StringAttribute{
					MarkdownDescription: "Where to connect: `HOST:PORT`, with the bound interface when `ip` is " +
						"a specific one, else the engine's `address` (provider block).",
					Computed: true,
				},
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
			"ip": schema.StringAttribute{
				MarkdownDescription: "Host interface to bind, e.g. `\"127.0.0.1\"` to keep the port local to the " +
					"host. Unset (the default) binds every interface, as Docker's `0.0.0.0` and `::` do.",
				Optional:   true,
				Validators: []validator.String{ipAddressValidator()},
			},
		}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A Docker container placed by Berth on a host of a pool. Placement happens at apply, " +
			"atomically among all the creates Terraform runs in parallel; `terraform plan` checks that everything " +
			"planned fits and explains why when it does not. Changing anything but `cpu`, `memory`, `cpu_limit`, " +
			"`memory_limit`, `restart`, `running`, `stop_timeout`, `registry_auth` and `timeouts` replaces the " +
			"container, and so does a change of `constraints` that its host no longer satisfies.",
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
				MarkdownDescription: "Image to run, e.g. `nginx:1.27`. Its tag is resolved to one digest " +
					"(`repo_digest`) when the container is created, the same for every container of the apply, " +
					"and pulled by that digest on the chosen host when missing there; see `pull_triggers` for " +
					"moving to a newer image under the same tag. Credentials: `registry_auth`, here or in the " +
					"provider block.",
				Required:      true,
				Validators:    []validator.String{imageReferenceValidator()},
				PlanModifiers: replaceIfChanged,
			},
			"command": schema.ListAttribute{
				MarkdownDescription: "Command and arguments; the image's default when unset.",
				ElementType:         types.StringType,
				Optional:            true,
				PlanModifiers:       []planmodifier.List{listplanmodifier.RequiresReplace()},
			},
			"env": schema.MapAttribute{
				MarkdownDescription: "Environment variables. Changing them replaces the container; `{}` and " +
					"leaving `env` out mean the same.",
				ElementType:   types.StringType,
				Optional:      true,
				Computed:      true,
				PlanModifiers: []planmodifier.Map{emptyEnvIsUnset{}},
			},
			"cpu": schema.Float64Attribute{
				MarkdownDescription: "CPUs reserved for the container and its CPU limit; fractional, at least " +
					"0.01 (the smallest limit the kernel enforces). Defaults to `0.25`. Changed in place when the host still fits it, otherwise the " +
					"container is replaced (the plan warns why).",
				Optional:   true,
				Computed:   true,
				Default:    float64default.StaticFloat64(defaultCPU),
				Validators: []validator.Float64{cpuCheck{}},
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
			"gpus": schema.Int64Attribute{
				MarkdownDescription: "GPUs reserved for the container, e.g. `1`, from its host's `gpus` (a `berth_pool` " +
					"host setting): the scheduler holds them like CPU, so two containers never get the same " +
					"device, and the container sees its own (`gpu_ids`, given to it as `NVIDIA_VISIBLE_DEVICES`). " +
					"Changing it replaces the container.",
				Optional:      true,
				Validators:    []validator.Int64{int64validator.Between(1, 64)},
				PlanModifiers: []planmodifier.Int64{int64planmodifier.RequiresReplace()},
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
					"makes a rule a preference instead of a requirement. Editing the rules (reordering them, " +
					"adding a preference) keeps a container whose host still satisfies every requirement; " +
					"otherwise it is replaced.",
				ElementType: types.StringType,
				Optional:    true,
				Validators:  []validator.List{listvalidator.ValueStringsAre(constraintValidator())},
			},
			"spread_group": schema.StringAttribute{
				MarkdownDescription: "Containers with the same spread group are spread across hosts (anti-affinity).",
				Optional:            true,
				PlanModifiers:       replaceIfChanged,
			},
			"max_per_host": schema.Int64Attribute{
				MarkdownDescription: "Most containers of the same `spread_group` on one host; needs `spread_group`.",
				Optional:            true,
				Validators: []validator.Int64{
					int64validator.AtLeast(1),
					int64validator.AlsoRequires(path.MatchRoot("spread_group")),
				},
				PlanModifiers: []planmodifier.Int64{int64planmodifier.RequiresReplace()},
			},
			"restart": schema.StringAttribute{
				MarkdownDescription: "Docker restart policy: `no`, `on-failure`, `always` or `unless-stopped` (the " +
					"default). Changed in place.",
				Optional:   true,
				Computed:   true,
				Default:    stringdefault.StaticString(defaultRestart),
				Validators: []validator.String{stringvalidator.OneOf("no", "on-failure", "always", "unless-stopped")},
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
				Optional: true,
				// Each member replaces on its own, so that retries can treat
				// 0 and unset alike; adding or removing the whole block replaces.
				PlanModifiers: []planmodifier.Object{objectplanmodifier.RequiresReplaceIf(addedOrRemoved,
					"Adding or removing the healthcheck replaces the container.",
					"Adding or removing the healthcheck replaces the container.")},
				Attributes: map[string]schema.Attribute{
					"test": schema.ListAttribute{
						MarkdownDescription: "Test command, e.g. `[\"CMD\", \"/app\", \"-check\"]` or `[\"CMD-SHELL\", \"curl -f localhost\"]`.",
						ElementType:         types.StringType,
						Required:            true,
						Validators:          []validator.List{listvalidator.SizeAtLeast(1)},
						PlanModifiers:       []planmodifier.List{listplanmodifier.RequiresReplace()},
					},
					"interval": schema.StringAttribute{
						MarkdownDescription: "Time between checks, e.g. `\"10s\"`.",
						Optional:            true,
						Validators:          []validator.String{durationValidator()},
						PlanModifiers:       replaceIfChanged,
					},
					"timeout": schema.StringAttribute{
						MarkdownDescription: "Time a check may take, e.g. `\"3s\"`.",
						Optional:            true,
						Validators:          []validator.String{durationValidator()},
						PlanModifiers:       replaceIfChanged,
					},
					"start_period": schema.StringAttribute{
						MarkdownDescription: "Grace period after start during which failures do not count.",
						Optional:            true,
						Validators:          []validator.String{durationValidator()},
						PlanModifiers:       replaceIfChanged,
					},
					"retries": schema.Int64Attribute{
						MarkdownDescription: "Consecutive failures before the container is unhealthy; `0` and " +
							"leaving it out mean Docker's default (3).",
						Optional:      true,
						Computed:      true,
						Validators:    []validator.Int64{int64validator.AtLeast(0)},
						PlanModifiers: []planmodifier.Int64{zeroRetriesIsUnset{}},
					},
				},
			},
			"registry_auth": schema.SingleNestedAttribute{
				MarkdownDescription: "Credentials for `image`'s private registry (looking up its digest and pulling it); " +
					"they take precedence over the provider block's `registry_auth` for that registry. In remote mode " +
					"they are sent to berthd with the create.",
				Optional: true,
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
					"and replace. Defaults to `\"10s\"`. Also written to the container (whole seconds, rounded " +
					"up) as Docker's stop timeout, which `docker stop` and a daemon shutdown use; Docker cannot " +
					"change that on a created container, so a change applies to Berth's stops at once and to " +
					"Docker's from the next replacement.",
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
			"image_id": schema.StringAttribute{
				MarkdownDescription: "ID of the image the container runs (`sha256:…`), as resolved on its host.",
				Computed:            true,
				PlanModifiers:       keepStableString,
			},
			"address": schema.StringAttribute{
				MarkdownDescription: "Where the container's published ports are reached: its engine's `address` " +
					"(provider block).",
				Computed:      true,
				PlanModifiers: keepStableString,
			},
			"published_ports": schema.ListNestedAttribute{
				MarkdownDescription: "Ports as published, with the host ports Berth picked for `external = 0` " +
					"and the `address` to connect to.",
				Computed:      true,
				PlanModifiers: []planmodifier.List{listplanmodifier.UseStateForUnknown()},
				NestedObject:  schema.NestedAttributeObject{Attributes: portAttributes(true)},
			},
			"gpu_ids": schema.ListAttribute{
				MarkdownDescription: "The GPUs the container holds: the host's `gpu_ids` when it names them, else " +
					"their indexes (`\"0\"`, `\"1\"`, …). Empty without `gpus`.",
				ElementType:   types.StringType,
				Computed:      true,
				PlanModifiers: []planmodifier.List{listplanmodifier.UseStateForUnknown()},
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
	for _, group := range []map[string]schema.Attribute{runtimeAttributes(), networkAttributes(), imageAttributes()} {
		maps.Copy(resp.Schema.Attributes, group)
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
		if !w.Internal.Equal(h.Internal) || !w.Protocol.Equal(h.Protocol) || !w.IP.Equal(h.IP) ||
			(!w.External.Equal(h.External) && w.External.ValueInt64() != 0) {
			return false
		}
	}
	return true
}

// addedOrRemoved replaces the container when its healthcheck appears or goes.
func addedOrRemoved(_ context.Context, req planmodifier.ObjectRequest, resp *objectplanmodifier.RequiresReplaceIfFuncResponse) {
	resp.RequiresReplace = req.PlanValue.IsNull() != req.StateValue.IsNull()
}

// emptyEnvIsUnset treats `env = {}` and no env alike: an import cannot
// tell them apart, so neither spelling may plan a change against the other.
// Any other change replaces the container.
type emptyEnvIsUnset struct{}

func (emptyEnvIsUnset) Description(context.Context) string {
	return "An empty env and no env are the same; other changes replace the container."
}

func (m emptyEnvIsUnset) MarkdownDescription(ctx context.Context) string { return m.Description(ctx) }

func (emptyEnvIsUnset) PlanModifyMap(_ context.Context, req planmodifier.MapRequest, resp *planmodifier.MapResponse) {
	empty := func(v types.Map) bool { return v.IsNull() || (!v.IsUnknown() && len(v.Elements()) == 0) }
	if req.ConfigValue.IsNull() {
		resp.PlanValue = types.MapNull(types.StringType)
		if empty(req.StateValue) {
			resp.PlanValue = req.StateValue
		}
	}
	if req.State.Raw.IsNull() || req.Plan.Raw.IsNull() || (empty(resp.PlanValue) && empty(req.StateValue)) {
		return
	}
	resp.RequiresReplace = !resp.PlanValue.Equal(req.StateValue)
}

// zeroRetriesIsUnset treats `retries = 0` and no retries alike: Docker
// records both as 0. Any other change replaces the container.
type zeroRetriesIsUnset struct{}

func (zeroRetriesIsUnset) Description(context.Context) string {
	return "Retries 0 and no retries are the same; other changes replace the container."
}

func (m zeroRetriesIsUnset) MarkdownDescription(ctx context.Context) string {
	return m.Description(ctx)
}

func (zeroRetriesIsUnset) PlanModifyInt64(_ context.Context, req planmodifier.Int64Request, resp *planmodifier.Int64Response) {
	zero := func(v types.Int64) bool { return v.IsNull() || (!v.IsUnknown() && v.ValueInt64() == 0) }
	if req.ConfigValue.IsNull() {
		resp.PlanValue = types.Int64Null()
		if zero(req.StateValue) {
			resp.PlanValue = req.StateValue
		}
	}
	if req.State.Raw.IsNull() || req.Plan.Raw.IsNull() || (zero(resp.PlanValue) && zero(req.StateValue)) {
		return
	}
	resp.RequiresReplace = !resp.PlanValue.Equal(req.StateValue)
}
