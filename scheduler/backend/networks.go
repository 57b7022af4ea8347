package backend

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/scheduler"
)

// A Berth network is one Docker network per host of its pool, all with the
// same name ("<pool>.<name>") and labels, so any process finds them. The
// network resource's state lists the hosts it is on: a host that joins the
// pool, or loses its copy out of band, shows in the next plan as a host to
// create it on. Drivers that span hosts (macvlan, ipvlan) share one subnet,
// so each host allocates from its own slice (Docker's ip_range).

// Network drivers.
const (
	DriverBridge  = "bridge"
	DriverMacvlan = "macvlan"
	DriverIPvlan  = "ipvlan"
)

// ErrNetworkInUse is returned (wrapped) when a network to delete, or a
// host to take it off, still has containers attached.
var ErrNetworkInUse = errors.New("network still has containers")

// NetworkSpec is berth_network's configuration.
type NetworkSpec struct {
	Pool    string
	Name    string
	Driver  string
	Parent  string // macvlan/ipvlan: the host interface
	Subnet  string // CIDR; required for macvlan/ipvlan
	Gateway string // "" for bridge without subnet
	// SlicePrefix is the prefix length of each host's slice of Subnet
	// (macvlan/ipvlan); zero for bridge.
	SlicePrefix int
	Options     map[string]string
	Labels      map[string]string
}

// Spans reports whether the driver joins hosts into one segment, so that
// hosts get slices of the subnet.
func (s NetworkSpec) Spans() bool {
	return s.Driver == DriverMacvlan || s.Driver == DriverIPvlan
}

// NetworkStatus is a network as planned or observed.
type NetworkStatus struct {
	Spec  NetworkSpec
	Hosts map[string]NetworkHost // by pool host
	// Unanswered: hosts of the pool whose engine did not answer a read;
	// they are neither in Hosts nor known to lack the network.
	Unanswered []string
}

// NetworkHost is the network on one host.
type NetworkHost struct {
	ID      string // Docker's network id; "" until created there
	IPRange string // macvlan/ipvlan: the host's slice of the subnet
}

// SliceOwner returns the host whose slice holds addr, "" when none does.
func (s NetworkStatus) SliceOwner(addr netip.Addr) string {
	slices := map[string]netip.Prefix{}
	for host, h := range s.Hosts {
		if p, err := netip.ParsePrefix(h.IPRange); err == nil {
			slices[host] = p
		}
	}
	return scheduler.SliceOwner(slices, addr)
}

// PlanNetwork puts the network on every host of the pool that is not lost
// (as planned in this process, else as recorded), keeping the ids and
// slices of current.
func (b *Embedded) PlanNetwork(ctx context.Context, spec NetworkSpec, current *NetworkStatus) (NetworkStatus, error) {
	pool, err := b.poolStatus(ctx, spec.Pool)
	if err != nil {
		return NetworkStatus{}, err
	}
	hosts := pool.Spec.notLost(keys(pool.Spec.Hosts))
	planned := NetworkStatus{Spec: spec, Hosts: make(map[string]NetworkHost, len(hosts))}
	for _, host := range hosts {
		if current != nil {
			planned.Hosts[host] = current.Hosts[host]
		} else {
			planned.Hosts[host] = NetworkHost{}
		}
	}
	if !spec.Spans() {
		return planned, nil
	}
	subnet, err := scheduler.ParseSubnet(spec.Subnet)
	if err != nil {
		return NetworkStatus{}, fmt.Errorf("network %s/%s: subnet: %w", spec.Pool, spec.Name, err)
	}
	kept := map[string]netip.Prefix{}
	for host, h := range planned.Hosts {
		if p, err := netip.ParsePrefix(h.IPRange); err == nil {
			kept[host] = p
		}
	}
	slices, err := scheduler.AssignSlices(subnet, spec.SlicePrefix, hosts, kept)
	if err != nil {
		return NetworkStatus{}, fmt.Errorf("network %s/%s: %w", spec.Pool, spec.Name, err)
	}
	for host, slice := range slices {
		h := planned.Hosts[host]
		h.IPRange = slice.String()
		planned.Hosts[host] = h
	}
	return planned, nil
}

// ApplyNetwork creates the network on the planned hosts that lack one
// (a copy already there, made by an earlier interrupted apply, is adopted)
// and removes it from current's hosts that planned dropped.
func (b *Embedded) ApplyNetwork(ctx context.Context, planned NetworkStatus, current *NetworkStatus) (NetworkStatus, error) {
	spec := planned.Spec
	var dropped []string
	if current != nil {
		for host, h := range current.Hosts {
			if _, kept := planned.Hosts[host]; !kept && h.ID != "" {
				dropped = append(dropped, host)
			}
		}
	}
	if err := b.refuseIfAttached(ctx, spec, dropped, current, "take it off host(s) "+strings.Join(sorted(dropped), ", ")); err != nil {
		return NetworkStatus{}, err
	}
	applied := NetworkStatus{Spec: spec, Hosts: make(map[string]NetworkHost, len(planned.Hosts))}
	var mu sync.Mutex
	err := forEachHost(keys(planned.Hosts), func(host string) error {
		h := planned.Hosts[host]
		eng, err := b.engines.Get(host)
		if err != nil {
			return err
		}
		found, err := eng.FindNetwork(ctx, spec.Pool, spec.Name)
		if err != nil {
			return err
		}
		if found != nil {
			h.ID = found.ID
		} else if h.ID, err = eng.CreateNetwork(ctx, engineNetwork(spec, h.IPRange)); err != nil {
			return err
		}
		mu.Lock()
		applied.Hosts[host] = h
		mu.Unlock()
		return nil
	})
	if err != nil {
		return applied, err
	}
	return applied, b.removeNetwork(ctx, current, dropped)
}

// ReadNetwork finds the network on the pool's hosts (all the engines of the
// provider block when the pool has no record any more).
func (b *Embedded) ReadNetwork(ctx context.Context, pool, name string) (*NetworkStatus, error) {
	hosts := b.engines.Names()
	if status, err := b.ReadPool(ctx, pool); err == nil && status != nil {
		hosts = status.Spec.notLost(keys(status.Spec.Hosts))
	}
	found := map[string]*engine.Network{}
	var mu sync.Mutex
	var unanswered []string
	readErr := forEachHost(hosts, func(host string) error {
		eng, err := b.engines.Get(host)
		if err != nil {
			return err
		}
		n, err := eng.FindNetwork(ctx, pool, name)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			unanswered = append(unanswered, host)
			return err
		}
		if n != nil {
			found[host] = n
		}
		return nil
	})
	if len(unanswered) == len(hosts) && len(hosts) > 0 {
		return nil, fmt.Errorf("reading network %s/%s: %w", pool, name, readErr)
	}
	if len(found) == 0 {
		return nil, nil
	}
	status := &NetworkStatus{Hosts: map[string]NetworkHost{}, Unanswered: sorted(unanswered)}
	for _, host := range keys(found) {
		n := found[host]
		if status.Spec.Name == "" {
			status.Spec = specOf(*n)
		}
		status.Hosts[host] = NetworkHost{ID: n.ID, IPRange: n.IPRange}
	}
	return status, nil
}

// DeleteNetwork removes the network from every host of current, refusing
// while any container is attached to it anywhere.
func (b *Embedded) DeleteNetwork(ctx context.Context, current NetworkStatus) error {
	hosts := keys(current.Hosts)
	if err := b.refuseIfAttached(ctx, current.Spec, hosts, &current, "delete"); err != nil {
		return err
	}
	return b.removeNetwork(ctx, &current, hosts)
}

// refuseIfAttached fails, naming them, when containers use the network on
// any of hosts.
func (b *Embedded) refuseIfAttached(ctx context.Context, spec NetworkSpec, hosts []string, current *NetworkStatus, action string) error {
	var mu sync.Mutex
	var users []string
	err := b.forEachCopy(hosts, current, func(host, id string, eng *engine.Engine) error {
		names, err := eng.NetworkUsers(ctx, id)
		if err != nil {
			return fmt.Errorf("cannot check %s for containers on network %s/%s: %w", host, spec.Pool, spec.Name, err)
		}
		mu.Lock()
		for _, name := range names {
			users = append(users, fmt.Sprintf("%s (on %s)", name, host))
		}
		mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	if len(users) > 0 {
		sort.Strings(users)
		return withKind(ErrNetworkInUse, "cannot %s network %q of pool %q: %d container(s) use it: %s; destroy them or take the network out of their networks first",
			action, spec.Name, spec.Pool, len(users), strings.Join(users, ", "))
	}
	return nil
}

func (b *Embedded) removeNetwork(ctx context.Context, current *NetworkStatus, hosts []string) error {
	return b.forEachCopy(hosts, current, func(_, id string, eng *engine.Engine) error {
		return eng.RemoveNetwork(ctx, id)
	})
}

// forEachCopy runs fn, in parallel, for the network's copy on each of
// hosts that has one.
func (b *Embedded) forEachCopy(hosts []string, current *NetworkStatus, fn func(host, id string, eng *engine.Engine) error) error {
	return forEachHost(hosts, func(host string) error {
		id := current.Hosts[host].ID
		if id == "" {
			return nil
		}
		eng, err := b.engines.Get(host)
		if err != nil {
			return err
		}
		return fn(host, id, eng)
	})
}

// engineNetwork is one host's copy of spec.
func engineNetwork(spec NetworkSpec, ipRange string) engine.NetworkSpec {
	return engine.NetworkSpec{
		Pool: spec.Pool, Name: spec.Name, Driver: spec.Driver, Parent: spec.Parent,
		Subnet: spec.Subnet, Gateway: spec.Gateway, IPRange: ipRange,
		Options: spec.Options, Labels: spec.Labels,
	}
}

// specOf reads a network's spec back from one host's copy.
func specOf(n engine.Network) NetworkSpec {
	spec := NetworkSpec{
		Pool: n.Pool, Name: n.Name, Driver: n.Driver, Parent: n.Parent,
		Subnet: n.Subnet, Gateway: n.Gateway, Options: n.Options, Labels: n.Labels,
	}
	if p, err := netip.ParsePrefix(n.IPRange); err == nil && spec.Spans() {
		spec.SlicePrefix = p.Bits()
	}
	return spec
}
