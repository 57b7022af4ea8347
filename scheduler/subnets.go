package scheduler

import (
	"fmt"
	"net/netip"
	"sort"
)

// A network that spans hosts (macvlan, ipvlan) is one L2 segment with one
// subnet, but every host's engine allocates addresses on its own. Giving
// each host a disjoint slice of the subnet (Docker's IPAM ip_range) keeps
// addresses unique across the pool without any engine knowing the others.

// DefaultSliceBits is how many bits longer than the subnet a host's slice
// is by default: 16 slices, so a /16 gives each host a /20.
const DefaultSliceBits = 4

// ParseSubnet reads an IPv4 subnet in CIDR form whose address is the
// network address ("10.20.0.0/16", not "10.20.0.1/16").
func ParseSubnet(text string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(text)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR subnet such as 10.20.0.0/16", text)
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("%q is not an IPv4 subnet (IPv6 is not supported yet)", text)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set: the subnet is %s", text, p.Masked())
	}
	if p.Bits() > 30 {
		return netip.Prefix{}, fmt.Errorf("%q is too small: a network needs at least a /30", text)
	}
	return p, nil
}

// DefaultGateway is the subnet's first host address, as Docker picks it.
func DefaultGateway(subnet netip.Prefix) netip.Addr {
	return subnet.Addr().Next()
}

// Slice returns the index-th slice of subnet whose prefix length is bits.
func Slice(subnet netip.Prefix, bits, index int) (netip.Prefix, error) {
	if bits < subnet.Bits() || bits > 30 {
		return netip.Prefix{}, fmt.Errorf("slices of %s must be between /%d and /30, not /%d", subnet, subnet.Bits(), bits)
	}
	if index < 0 || index >= SliceCount(subnet, bits) {
		return netip.Prefix{}, fmt.Errorf("%s has %d slices of /%d, not %d", subnet, SliceCount(subnet, bits), bits, index+1)
	}
	base := subnet.Addr().As4()
	start := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	start += uint32(index) << (32 - bits)
	addr := netip.AddrFrom4([4]byte{byte(start >> 24), byte(start >> 16), byte(start >> 8), byte(start)})
	return netip.PrefixFrom(addr, bits), nil
}

// SliceCount is how many slices of prefix length bits subnet holds.
func SliceCount(subnet netip.Prefix, bits int) int {
	if bits < subnet.Bits() {
		return 0
	}
	return 1 << (bits - subnet.Bits())
}

// AssignSlices gives every host a slice of subnet. Hosts that hold one in
// current keep it (their containers have addresses in it); the others take
// the lowest free slices, in host name order, so that every process plans
// the same assignment from the same inputs.
func AssignSlices(subnet netip.Prefix, bits int, hosts []string, current map[string]netip.Prefix) (map[string]netip.Prefix, error) {
	count := SliceCount(subnet, bits)
	taken := map[netip.Prefix]bool{}
	out := make(map[string]netip.Prefix, len(hosts))
	var unassigned []string
	for _, host := range hosts {
		if slice, ok := current[host]; ok && slice.Bits() == bits && subnet.Contains(slice.Addr()) && !taken[slice] {
			out[host] = slice
			taken[slice] = true
			continue
		}
		unassigned = append(unassigned, host)
	}
	sort.Strings(unassigned)
	next := 0
	for _, host := range unassigned {
		for ; next < count; next++ {
			slice, err := Slice(subnet, bits, next)
			if err != nil {
				return nil, err
			}
			if !taken[slice] {
				break
			}
		}
		if next >= count {
			return nil, fmt.Errorf("%s has room for %d host slices of /%d, and the pool has %d hosts: use a larger subnet or a longer slice prefix",
				subnet, count, bits, len(hosts))
		}
		slice, _ := Slice(subnet, bits, next)
		out[host] = slice
		taken[slice] = true
		next++
	}
	return out, nil
}

// SliceOwner returns the host whose slice holds addr, "" when none does.
func SliceOwner(slices map[string]netip.Prefix, addr netip.Addr) string {
	for host, slice := range slices {
		if slice.Contains(addr) {
			return host
		}
	}
	return ""
}
