package provider

import (
	"github.com/hashicorp/terraform-plugin-framework-validators/float64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/setvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/boolplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/objectplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
)

// runtimeAttributes are berth_container's docker_container settings, under
// docker_container's names. Docker cannot change them on a created
// container, so each replaces it; the limits, which `docker update` changes,
// are in place.
func runtimeAttributes() map[string]schema.Attribute {
	replaceList := []planmodifier.List{listplanmodifier.RequiresReplace()}
	replaceMap := []planmodifier.Map{mapplanmodifier.RequiresReplace()}
	replaceBool := []planmodifier.Bool{boolplanmodifier.RequiresReplace()}
	stringList := func(description string, each ...validator.String) schema.ListAttribute {
		return schema.ListAttribute{
			MarkdownDescription: description,
			ElementType:         types.StringType,
			Optional:            true,
			Validators:          []validator.List{listvalidator.ValueStringsAre(each...)},
			PlanModifiers:       replaceList,
		}
	}
	stringMap := func(description string, keys validator.String) schema.MapAttribute {
		return schema.MapAttribute{
			MarkdownDescription: description,
			ElementType:         types.StringType,
			Optional:            true,
			Validators:          []validator.Map{mapvalidator.KeysAre(keys)},
			PlanModifiers:       replaceMap,
		}
	}
	flag := func(description string) schema.BoolAttribute {
		return schema.BoolAttribute{
			MarkdownDescription: description + " Defaults to `false`.",
			Optional:            true,
			Computed:            true,
			Default:             booldefault.StaticBool(false),
			PlanModifiers:       replaceBool,
		}
	}
	text := func(description string, check validator.String) schema.StringAttribute {
		return schema.StringAttribute{
			MarkdownDescription: description,
			Optional:            true,
			Validators:          []validator.String{check},
			PlanModifiers:       replaceIfChanged,
		}
	}
	capabilities := func(description string) schema.SetAttribute {
		return schema.SetAttribute{
			MarkdownDescription: description,
			ElementType:         types.StringType,
			Optional:            true,
			Validators:          []validator.Set{setvalidator.ValueStringsAre(capabilityValidator())},
		}
	}
	return map[string]schema.Attribute{
		"entrypoint": schema.ListAttribute{
			MarkdownDescription: "Entrypoint and its arguments, replacing the image's; `command` is appended to it.",
			ElementType:         types.StringType,
			Optional:            true,
			Validators:          []validator.List{listvalidator.SizeAtLeast(1)},
			PlanModifiers:       replaceList,
		},
		"working_dir": text("Working directory of the command inside the container (an absolute path); the image's when unset.",
			absolutePathValidator()),
		"user": text("User (and optionally group) the command runs as: `\"app\"`, `\"1000\"` or `\"1000:1000\"`; the image's when unset.",
			userValidator()),
		"labels": stringMap("Docker labels on the container. Keys under `sh.berth.` are Berth's own and refused.",
			labelKeyValidator()),
		"log_driver": text("Docker logging driver, e.g. `\"json-file\"`, `\"local\"` or `\"none\"`; the engine's default when unset.",
			logDriverValidator()),
		"log_opts": stringMap("Options of the logging driver, e.g. `{ max-size = \"10m\" }`.",
			stringvalidator.LengthAtLeast(1)),
		"capabilities": schema.SingleNestedAttribute{
			MarkdownDescription: "Linux capabilities added to or dropped from Docker's default set.",
			Optional:            true,
			PlanModifiers:       []planmodifier.Object{objectplanmodifier.RequiresReplace()},
			Attributes: map[string]schema.Attribute{
				"add":  capabilities("Capabilities to add, e.g. `[\"NET_ADMIN\"]`."),
				"drop": capabilities("Capabilities to drop, e.g. `[\"ALL\"]`."),
			},
		},
		"privileged": flag("Run the container privileged (all capabilities and devices)."),
		"read_only":  flag("Mount the container's root filesystem read-only."),
		"init":       flag("Run Docker's init process as PID 1 to reap zombies and forward signals."),
		"ulimits": schema.ListNestedAttribute{
			MarkdownDescription: "Resource limits (`ulimit`) for processes in the container.",
			Optional:            true,
			Validators:          []validator.List{ulimitsValidator{}},
			PlanModifiers:       replaceList,
			NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
				"name": schema.StringAttribute{MarkdownDescription: "Limit name, e.g. `nofile` or `nproc`.", Required: true},
				"soft": schema.Int64Attribute{MarkdownDescription: "Soft limit; `-1` for unlimited.", Required: true},
				"hard": schema.Int64Attribute{MarkdownDescription: "Hard limit, at least `soft`; `-1` for unlimited.", Required: true},
			}},
		},
		"sysctls": stringMap("Namespaced kernel parameters, e.g. `{ \"net.core.somaxconn\" = \"1024\" }`.",
			sysctlKeyValidator()),
		"extra_hosts": stringList("Lines added to the container's `/etc/hosts`, as `\"NAME:IP\"`.", extraHostValidator()),
		"dns":         stringList("DNS servers the container uses instead of the engine's.", ipAddressValidator()),
		"dns_search":  stringList("DNS search domains.", domainValidator()),
		"devices": schema.ListNestedAttribute{
			MarkdownDescription: "Host devices made available in the container. The device must exist on the host " +
				"the container lands on: pin the container with `host` or constrain it to hosts that have it.",
			Optional:      true,
			PlanModifiers: replaceList,
			NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
				"host_path": schema.StringAttribute{
					MarkdownDescription: "Device on the host, e.g. `/dev/fuse`.",
					Required:            true,
					Validators:          []validator.String{absolutePathValidator()},
				},
				"container_path": schema.StringAttribute{
					MarkdownDescription: "Path inside the container; `host_path` when unset.",
					Optional:            true,
					Validators:          []validator.String{absolutePathValidator()},
				},
				"permissions": schema.StringAttribute{
					MarkdownDescription: "cgroup permissions: `r`, `w` and `m` (mknod); `rwm` when unset.",
					Optional:            true,
					Validators:          []validator.String{permissionsValidator()},
				},
			}},
		},
		"mounts": schema.ListNestedAttribute{
			MarkdownDescription: "Filesystems mounted into the container: `bind` mounts a path of the host the " +
				"container lands on (it must exist there: the create fails naming the host and the path; pin " +
				"the container with `host` or constrain it to hosts that have the path), `tmpfs` mounts a " +
				"memory-backed filesystem, `volume` mounts a `berth_volume` of the same pool: the container " +
				"lands on the volume's host, and so does every replacement (when that host cannot take it, " +
				"the plan fails naming the volume). Changing the mounts replaces the container.",
			Optional:      true,
			Validators:    []validator.List{mountsValidator{}},
			PlanModifiers: replaceList,
			NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
				"type": schema.StringAttribute{
					MarkdownDescription: "`bind`, `volume` or `tmpfs`.",
					Required:            true,
					Validators:          []validator.String{stringvalidator.OneOf(engine.MountBind, engine.MountVolume, engine.MountTmpfs)},
				},
				"source": schema.StringAttribute{
					MarkdownDescription: "`bind`: the absolute path on the host. `volume`: the volume's name " +
						"(`berth_volume.NAME.name`, which also orders the volume's create first). Not used by `tmpfs`.",
					Optional: true,
				},
				"target": schema.StringAttribute{
					MarkdownDescription: "Absolute path inside the container.",
					Required:            true,
					Validators:          []validator.String{absolutePathValidator()},
				},
				"read_only": schema.BoolAttribute{
					MarkdownDescription: "Mount read-only. Defaults to `false`.",
					Optional:            true,
					Computed:            true,
					Default:             booldefault.StaticBool(false),
				},
				"size": schema.StringAttribute{
					MarkdownDescription: "`tmpfs`: its size limit, e.g. `\"64MiB\"`; unlimited when unset.",
					Optional:            true,
					Validators:          []validator.String{sizeValidator()},
				},
				"mode": schema.StringAttribute{
					MarkdownDescription: "`tmpfs`: permission bits in octal, e.g. `\"1777\"` (Docker's default) or `\"0700\"`.",
					Optional:            true,
					Validators:          []validator.String{modeValidator()},
				},
			}},
		},
		"shm_size": text("Size of `/dev/shm`, e.g. `\"256MiB\"`; Docker's default (64MiB) when unset.", sizeValidator()),
		"stop_signal": text("Signal that stops the container, e.g. `\"SIGINT\"`; the image's (usually SIGTERM) when unset.",
			signalValidator()),
		"memory_limit": schema.StringAttribute{
			MarkdownDescription: "Hard memory limit when it should differ from the reserved `memory`, e.g. `\"1GiB\"`; " +
				"at least `memory`. `memory` is then Docker's soft limit (memory reservation). Changed in place.",
			Optional:   true,
			Validators: []validator.String{memoryValidator()},
		},
		"cpu_limit": schema.Float64Attribute{
			MarkdownDescription: "CPU limit when it should differ from the reserved `cpu`, e.g. `2`; at least `cpu`. " +
				"The reserved `cpu` is always written as Docker's CPU shares (1024 per CPU), its weight under " +
				"contention. Changed in place.",
			Optional:   true,
			Validators: []validator.Float64{float64validator.AtLeast(0.001)},
		},
	}
}
