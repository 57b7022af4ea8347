package provider

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

// Conversion and plan-time checks of berth_container's networks
// (container_schema_networks.go).

type networkModel struct {
	Name        types.String `tfsdk:"name"`
	Aliases     types.List   `tfsdk:"aliases"`
	IPv4Address types.String `tfsdk:"ipv4_address"`
}

var networkObjectType = types.ObjectType{AttrTypes: map[string]attr.Type{
	"name": types.StringType, "aliases": types.ListType{ElemType: types.StringType}, "ipv4_address": types.StringType,
}}

// attachments converts networks for the engine; nil when unset.
func (m ContainerResourceModel) attachments(ctx context.Context, diags *diag.Diagnostics) []engine.NetworkAttachment {
	networks := elements[networkModel](ctx, m.Networks, diags)
	if networks == nil {
		return nil
	}
	out := make([]engine.NetworkAttachment, len(networks))
	for i, n := range networks {
		out[i] = engine.NetworkAttachment{
			Name:        n.Name.ValueString(),
			Aliases:     elements[string](ctx, n.Aliases, diags),
			IPv4Address: n.IPv4Address.ValueString(),
		}
	}
	return out
}

// importNetworks restores networks as recorded on the container.
func (m *ContainerResourceModel) importNetworks(ctx context.Context, attachments []engine.NetworkAttachment, diags *diag.Diagnostics) {
	var networks []networkModel
	for _, a := range attachments {
		networks = append(networks, networkModel{
			Name:        types.StringValue(a.Name),
			Aliases:     listOf(ctx, types.StringType, a.Aliases, diags),
			IPv4Address: optionalString(a.IPv4Address),
		})
	}
	m.Networks = listOf(ctx, networkObjectType, networks, diags)
}

// observeNetworks records the addresses the container got.
func (m *ContainerResourceModel) observeNetworks(ctx context.Context, addresses map[string]string, diags *diag.Diagnostics) {
	if addresses == nil {
		addresses = map[string]string{}
	}
	m.NetworkAddresses = mapOf(ctx, addresses, diags)
}

// placeByAddress checks that every network of spec is a network of its
// pool and returns the host a fixed macvlan/ipvlan address decides ("" when
// none does, or when the network's slices are not known yet). Errors point
// at the entry of networks.
func placeByAddress(ctx context.Context, be backend.Backend, memo *plannedNetworks, spec backend.ContainerSpec) (string, diag.Diagnostics) {
	var diags diag.Diagnostics
	decided, decidedBy := spec.Host, "host"
	for i, a := range spec.Options.Networks {
		at := path.Root("networks").AtListIndex(i)
		addrAt := at.AtName("ipv4_address")
		status, err := lookupNetwork(ctx, be, memo, spec.Pool, a.Name)
		switch {
		case err != nil:
			diags.AddAttributeError(at.AtName("name"), fmt.Sprintf("Cannot look up network %q", a.Name), fmt.Sprintf("%s: %v", at.AtName("name"), err))
			continue
		case status == nil:
			continue // planned in this run before its pool: slices unknown yet
		case a.IPv4Address == "":
			continue
		}
		addr, err := netip.ParseAddr(a.IPv4Address)
		if err != nil {
			continue // the attribute's validator says why
		}
		subnet, err := netip.ParsePrefix(status.Spec.Subnet)
		if err != nil || !subnet.Contains(addr) {
			diags.AddAttributeError(addrAt, "Address outside the network's subnet",
				fmt.Sprintf("%s = %q is not within network %q's subnet %q: choose an address within it, or remove ipv4_address to let the engine pick one.",
					addrAt, a.IPv4Address, a.Name, status.Spec.Subnet))
			continue
		}
		if !status.Spec.Spans() {
			continue
		}
		owner := status.SliceOwner(addr)
		switch {
		case owner == "":
			diags.AddAttributeError(addrAt, "Address in no host's slice",
				fmt.Sprintf("%s = %q is in no host's slice of network %q (%s): choose an address within the slice of the host it should run on.",
					addrAt, a.IPv4Address, a.Name, slicesText(*status)))
		case decided != "" && decided != owner:
			diags.AddAttributeError(addrAt, "Address on another host",
				fmt.Sprintf("%s = %q is in host %q's slice of network %q (%s), but %s puts the container on %q: "+
					"choose an address in %q's slice, or remove the pin.", addrAt, a.IPv4Address, owner, a.Name, slicesText(*status), decidedBy, decided, decided))
		default:
			decided, decidedBy = owner, fmt.Sprintf("%s = %q", addrAt, a.IPv4Address)
		}
	}
	return decided, diags
}

// lookupNetwork finds a network as this process planned it, else on the
// engines (remembered for the next container). A network of no host is an
// error that says how to declare it.
func lookupNetwork(ctx context.Context, be backend.Backend, memo *plannedNetworks, pool, name string) (*backend.NetworkStatus, error) {
	if status, planned := memo.lookup(pool, name); planned {
		return status, nil
	}
	status, err := be.ReadNetwork(ctx, pool, name)
	if err != nil {
		return nil, err
	}
	if status == nil {
		return nil, fmt.Errorf("pool %q has no network %q: declare it with a berth_network resource and reference it as berth_network.NAME.name, so that it is created first", pool, name)
	}
	memo.plan(pool, name, status)
	return status, nil
}

func slicesText(status backend.NetworkStatus) string {
	parts := make([]string, 0, len(status.Hosts))
	for host, h := range status.Hosts {
		parts = append(parts, host+" "+h.IPRange)
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// uniqueNetworkNames refuses joining a network twice.
type uniqueNetworkNames struct{}

func (uniqueNetworkNames) Description(context.Context) string {
	return "each network appears once"
}

func (v uniqueNetworkNames) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (uniqueNetworkNames) ValidateList(ctx context.Context, req validator.ListRequest, resp *validator.ListResponse) {
	var networks []networkModel
	if !isKnown(req.ConfigValue) || req.ConfigValue.ElementsAs(ctx, &networks, false).HasError() {
		return
	}
	seen := map[string]bool{}
	for i, n := range networks {
		if !isKnown(n.Name) {
			continue
		}
		if seen[n.Name.ValueString()] {
			at := req.Path.AtListIndex(i).AtName("name")
			resp.Diagnostics.AddAttributeError(at, "Network listed twice",
				fmt.Sprintf("%s: network %q appears more than once in networks: list it once, with all its aliases.", at, n.Name.ValueString()))
		}
		seen[n.Name.ValueString()] = true
	}
}

func ipv4AddressValidator() validator.String {
	return stringCheck{
		summary: "Invalid IPv4 address",
		hint:    `Use an IPv4 address, e.g. "10.20.0.10".`,
		check: func(s string) error {
			if addr, err := netip.ParseAddr(s); err != nil || !addr.Is4() {
				return fmt.Errorf("%q is not an IPv4 address", s)
			}
			return nil
		},
	}
}
