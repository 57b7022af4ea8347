package provider

import (
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// networkAttributes are berth_container's networks (berth_network of the
// same pool) and the addresses it got on them. A change of networks
// replaces the container: they are recorded with its settings (imports
// read them back), a fixed ipv4_address decides the host, and Docker's
// connect/disconnect would leave that record stale.
func networkAttributes() map[string]schema.Attribute {
	return map[string]schema.Attribute{
		"networks": schema.ListNestedAttribute{
			MarkdownDescription: "Networks the container joins, `berth_network`s of the same pool, in order: the first " +
				"gives the container its default route and publishes its `ports` (engines before Docker 28, API 1.48, " +
				"take the network whose name sorts first instead: put a `bridge` network there to publish ports, since " +
				"`macvlan`/`ipvlan` networks publish none). Unset, the container is on its engine's default network. " +
				"A fixed `ipv4_address` on a `macvlan`/`ipvlan` network must lie in one host's slice (the network's " +
				"`hosts`): the container lands on that host, and the plan fails when `host` pins it elsewhere. " +
				"Changing `networks` replaces the container.",
			Optional:      true,
			Validators:    []validator.List{listvalidator.SizeAtLeast(1), uniqueNetworkNames{}},
			PlanModifiers: []planmodifier.List{listplanmodifier.RequiresReplace()},
			NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
				"name": schema.StringAttribute{
					MarkdownDescription: "Name of a `berth_network` of the container's pool; reference it " +
						"(`berth_network.app.name`) so that the network is created first.",
					Required:   true,
					Validators: []validator.String{containerNameValidator()},
				},
				"aliases": schema.ListAttribute{
					MarkdownDescription: "Names other containers on the network resolve to this one (Docker's " +
						"embedded DNS: on a `bridge` network, for containers of the same host).",
					ElementType: types.StringType,
					Optional:    true,
					Validators: []validator.List{listvalidator.ValueStringsAre(
						stringvalidator.RegexMatches(hostnameRegexp, `must be a host name such as "db" or "api.internal"`))},
				},
				"ipv4_address": schema.StringAttribute{
					MarkdownDescription: "Fixed IPv4 address on the network, within its `subnet` (and, for " +
						"`macvlan`/`ipvlan`, within one host's slice); unset, the engine picks one.",
					Optional:   true,
					Validators: []validator.String{ipv4AddressValidator()},
				},
			}},
		},
		"network_addresses": schema.MapAttribute{
			MarkdownDescription: "The container's IPv4 address on each of its `networks`, by network name; " +
				"empty while it is stopped.",
			ElementType:   types.StringType,
			Computed:      true,
			PlanModifiers: []planmodifier.Map{mapplanmodifier.UseStateForUnknown()},
		},
	}
}
