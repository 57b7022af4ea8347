package provider

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"sync"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/berthsh/terraform-provider-berth/scheduler"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

// NetworkResourceModel is berth_network's configuration and state.
type NetworkResourceModel struct {
	ID               types.String `tfsdk:"id"`
	Pool             types.String `tfsdk:"pool"`
	Name             types.String `tfsdk:"name"`
	Driver           types.String `tfsdk:"driver"`
	Parent           types.String `tfsdk:"parent"`
	Subnet           types.String `tfsdk:"subnet"`
	Gateway          types.String `tfsdk:"gateway"`
	HostPrefixLength types.Int64  `tfsdk:"host_prefix_length"`
	Options          types.Map    `tfsdk:"options"`
	Labels           types.Map    `tfsdk:"labels"`
	Hosts            types.Map    `tfsdk:"hosts"` // of networkHostModel
}

// networkHostModel is one entry of hosts.
type networkHostModel struct {
	NetworkID types.String `tfsdk:"network_id"`
	IPRange   types.String `tfsdk:"ip_range"`
}

var (
	networkHostType = types.ObjectType{AttrTypes: map[string]attr.Type{"network_id": types.StringType, "ip_range": types.StringType}}
	// Linux interface names: up to 15 characters, no '/' or spaces.
	interfaceRegexp = regexp.MustCompile(`^[A-Za-z0-9_.:@-]{1,15}$`)
)

func subnetValidator() validator.String {
	return stringCheck{
		summary: "Invalid subnet",
		hint:    `Use an IPv4 network in CIDR form, e.g. "10.20.0.0/16".`,
		check: func(s string) error {
			_, err := scheduler.ParseSubnet(s)
			return err
		},
	}
}

// spans reports whether the configured driver joins hosts into one segment.
func (m NetworkResourceModel) spans() bool {
	return backend.NetworkSpec{Driver: m.Driver.ValueString()}.Spans()
}

// validate checks what depends on several attributes; unknown values are
// checked at apply by the engines.
func (m NetworkResourceModel) validate(diags *diag.Diagnostics) {
	if m.Driver.IsNull() {
		m.Driver = types.StringValue(backend.DriverBridge) // the default
	}
	driver := m.Driver.ValueString()
	switch {
	case m.Driver.IsUnknown():
	case m.spans() && m.Parent.IsNull():
		diags.AddAttributeError(path.Root("parent"), "parent is required for "+driver,
			fmt.Sprintf("A %s network sits on a host interface: set parent, e.g. parent = \"eth0\", an interface that every host of the pool has.", driver))
	case !m.spans() && !m.Parent.IsNull():
		diags.AddAttributeError(path.Root("parent"), "parent is only for macvlan and ipvlan",
			"A bridge network makes its own interface on each host: remove parent, or set driver = \"macvlan\" or \"ipvlan\".")
	}
	if m.spans() && m.Subnet.IsNull() && isKnown(m.Driver) {
		diags.AddAttributeError(path.Root("subnet"), "subnet is required for "+driver,
			"Hosts of a "+driver+" network share one segment, so Berth gives each a slice of one subnet: set subnet, e.g. subnet = \"10.20.0.0/16\".")
	}
	if isKnown(m.Driver) && !m.spans() && !m.HostPrefixLength.IsNull() {
		diags.AddAttributeError(path.Root("host_prefix_length"), "host_prefix_length is only for macvlan and ipvlan",
			"A bridge network is per host and needs no slices: remove host_prefix_length.")
	}
	if m.Subnet.IsNull() && isKnown(m.Gateway) {
		diags.AddAttributeError(path.Root("gateway"), "gateway needs subnet",
			"Docker picks a bridge network's subnet and gateway together when subnet is unset: set subnet too, or remove gateway.")
	}
	if !isKnown(m.Subnet) {
		return
	}
	subnet, err := scheduler.ParseSubnet(m.Subnet.ValueString())
	if err != nil {
		return // the attribute's validator says why
	}
	if isKnown(m.Gateway) {
		gw, err := netip.ParseAddr(m.Gateway.ValueString())
		last := lastAddress(subnet)
		switch {
		case err != nil:
		case !subnet.Contains(gw):
			diags.AddAttributeError(path.Root("gateway"), "Gateway outside the subnet",
				fmt.Sprintf("gateway = %q is not in subnet %s: use an address within it, e.g. %s (the default).", gw, subnet, scheduler.DefaultGateway(subnet)))
		case gw == subnet.Addr() || gw == last:
			diags.AddAttributeError(path.Root("gateway"), "Gateway is not a host address",
				fmt.Sprintf("gateway = %q is the network or broadcast address of %s: use a host address, e.g. %s.", gw, subnet, scheduler.DefaultGateway(subnet)))
		}
	}
	if isKnown(m.HostPrefixLength) && m.spans() {
		if bits := int(m.HostPrefixLength.ValueInt64()); bits < subnet.Bits() {
			diags.AddAttributeError(path.Root("host_prefix_length"), "Host slices larger than the subnet",
				fmt.Sprintf("host_prefix_length = %d is shorter than subnet %s's /%d: use a value from %d to 30.", bits, subnet, subnet.Bits(), subnet.Bits()))
		}
	}
}

// lastAddress is the subnet's broadcast address.
func lastAddress(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	hostBits := 32 - p.Bits()
	n := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | (1<<hostBits - 1)
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// fillDefaults plans the id and the computed defaults, from configuration
// alone so that every process plans the same.
func (m *NetworkResourceModel) fillDefaults() {
	if isKnown(m.Pool) && isKnown(m.Name) {
		m.ID = types.StringValue(m.Pool.ValueString() + "/" + m.Name.ValueString())
	}
	if !isKnown(m.Subnet) {
		if m.Subnet.IsNull() {
			m.Gateway, m.HostPrefixLength = types.StringNull(), types.Int64Null()
		}
		return
	}
	subnet, err := scheduler.ParseSubnet(m.Subnet.ValueString())
	if err != nil {
		return
	}
	if m.Gateway.IsUnknown() {
		m.Gateway = types.StringValue(scheduler.DefaultGateway(subnet).String())
	}
	if m.HostPrefixLength.IsUnknown() && isKnown(m.Driver) {
		m.HostPrefixLength = types.Int64Null()
		if m.spans() {
			m.HostPrefixLength = types.Int64Value(int64(min(subnet.Bits()+scheduler.DefaultSliceBits, 30)))
		}
	}
}

// spec is the backend's NetworkSpec.
func (m NetworkResourceModel) spec(ctx context.Context, diags *diag.Diagnostics) backend.NetworkSpec {
	return backend.NetworkSpec{
		Pool:        m.Pool.ValueString(),
		Name:        m.Name.ValueString(),
		Driver:      m.Driver.ValueString(),
		Parent:      m.Parent.ValueString(),
		Subnet:      m.Subnet.ValueString(),
		Gateway:     m.Gateway.ValueString(),
		SlicePrefix: int(m.HostPrefixLength.ValueInt64()),
		Options:     stringMap(ctx, m.Options, diags),
		Labels:      stringMap(ctx, m.Labels, diags),
	}
}

// status is the network as planned or recorded; a host with an unknown or
// null network_id has no network (yet).
func (m NetworkResourceModel) status(ctx context.Context) (backend.NetworkStatus, diag.Diagnostics) {
	var diags diag.Diagnostics
	status := backend.NetworkStatus{Spec: m.spec(ctx, &diags), Hosts: map[string]backend.NetworkHost{}}
	if !isKnown(m.Hosts) {
		return status, diags
	}
	hosts := map[string]networkHostModel{}
	diags.Append(m.Hosts.ElementsAs(ctx, &hosts, false)...)
	for name, h := range hosts {
		status.Hosts[name] = backend.NetworkHost{ID: h.NetworkID.ValueString(), IPRange: h.IPRange.ValueString()}
	}
	return status, diags
}

// hostsValue renders a status's hosts; when planning, a host without an
// id yet gets an unknown one (created at apply).
func hostsValue(ctx context.Context, status backend.NetworkStatus, planning bool, diags *diag.Diagnostics) types.Map {
	hosts := make(map[string]networkHostModel, len(status.Hosts))
	for name, h := range status.Hosts {
		id := optionalString(h.ID)
		if planning && h.ID == "" {
			id = types.StringUnknown()
		}
		hosts[name] = networkHostModel{NetworkID: id, IPRange: optionalString(h.IPRange)}
	}
	value, d := types.MapValueFrom(ctx, networkHostType, hosts)
	diags.Append(d...)
	return value
}

// observe records what the engines have. Hosts in state where the network
// is gone keep their slice with a null id (the plan re-creates it there);
// hosts that did not answer keep what state knows.
func (m *NetworkResourceModel) observe(ctx context.Context, observed backend.NetworkStatus) diag.Diagnostics {
	current, diags := m.status(ctx)
	seen := observed.Spec
	m.ID = types.StringValue(seen.Pool + "/" + seen.Name)
	m.Driver = types.StringValue(seen.Driver)
	m.Parent = optionalString(seen.Parent)
	m.Subnet = optionalString(seen.Subnet)
	m.Gateway = optionalString(seen.Gateway)
	m.HostPrefixLength = types.Int64Null()
	if seen.SlicePrefix > 0 {
		m.HostPrefixLength = types.Int64Value(int64(seen.SlicePrefix))
	}
	m.Options = mapOf(ctx, seen.Options, &diags)
	m.Labels = mapOf(ctx, seen.Labels, &diags)
	hosts := backend.NetworkStatus{Hosts: map[string]backend.NetworkHost{}}
	unanswered := map[string]bool{}
	for _, host := range observed.Unanswered {
		unanswered[host] = true
	}
	for host, h := range current.Hosts {
		switch {
		case unanswered[host]:
			hosts.Hosts[host] = h
		default:
			hosts.Hosts[host] = backend.NetworkHost{IPRange: h.IPRange}
		}
	}
	for host, h := range observed.Hosts {
		hosts.Hosts[host] = h
	}
	m.Hosts = hostsValue(ctx, hosts, false, &diags)
	return diags
}

// plannedNetworks remembers the networks this process planned, for the
// containers planned after them: a network created in the same apply is
// on no engine yet. A nil status is a network planned before its pool
// exists: its slices are not known yet.
type plannedNetworks struct {
	m sync.Map // "pool/name" -> *backend.NetworkStatus
}

func (p *plannedNetworks) plan(pool, name string, status *backend.NetworkStatus) {
	p.m.Store(pool+"/"+name, status)
}

// lookup returns the planned network; planned is false when this process
// planned no such network.
func (p *plannedNetworks) lookup(pool, name string) (status *backend.NetworkStatus, planned bool) {
	v, ok := p.m.Load(pool + "/" + name)
	if !ok {
		return nil, false
	}
	status, _ = v.(*backend.NetworkStatus)
	return status, true
}
