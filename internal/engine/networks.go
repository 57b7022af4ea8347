package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
)

// Labels on Berth networks. A network carries the pool label too (as
// containers do), so that the networks of a pool are one filtered list.
// The configuration is recorded as asked: Docker fills in a bridge's
// subnet and adds driver options of its own, which an import must not
// take for configuration.
const (
	LabelNetwork       = "sh.berth.network"        // Berth's name of the network
	LabelNetworkConfig = "sh.berth.network-config" // networkConfig as JSON
)

// networkConfig is what LabelNetworkConfig records.
type networkConfig struct {
	Subnet  string            `json:"subnet,omitempty"`
	Gateway string            `json:"gateway,omitempty"`
	Options map[string]string `json:"options"`
}

// NetworkSpec is one engine's copy of a Berth network.
type NetworkSpec struct {
	Pool    string
	Name    string // Berth name, unique within the pool
	Driver  string // bridge, macvlan or ipvlan
	Parent  string // macvlan/ipvlan: the host interface
	Subnet  string // CIDR; "" lets Docker pick (bridge only)
	Gateway string
	IPRange string // this engine's slice of Subnet; "" for the whole subnet
	Options map[string]string
	Labels  map[string]string
}

// Network is a Berth network as found on an engine.
type Network struct {
	ID string
	NetworkSpec
}

// NetworkAttachment is one network a container joins, by Berth name.
type NetworkAttachment struct {
	Name        string   `json:"name"`
	Aliases     []string `json:"aliases"`
	IPv4Address string   `json:"ipv4_address,omitempty"`
}

// CreateNetwork creates the network named "<pool>.<name>" and returns its id.
func (e *Engine) CreateNetwork(ctx context.Context, spec NetworkSpec) (string, error) {
	name := DockerName(spec.Pool, spec.Name)
	options := make(map[string]string, len(spec.Options)+1)
	for k, v := range spec.Options {
		options[k] = v
	}
	if spec.Parent != "" {
		options["parent"] = spec.Parent
	}
	labels := make(map[string]string, len(spec.Labels)+3)
	for k, v := range spec.Labels {
		labels[k] = v
	}
	labels[LabelPool] = spec.Pool
	labels[LabelNetwork] = spec.Name
	labels[LabelNetworkConfig] = mustJSON(networkConfig{Subnet: spec.Subnet, Gateway: spec.Gateway, Options: spec.Options})
	create := network.CreateOptions{Driver: spec.Driver, Options: options, Labels: labels}
	if spec.Subnet != "" {
		create.IPAM = &network.IPAM{Driver: "default", Config: []network.IPAMConfig{{
			Subnet: spec.Subnet, Gateway: spec.Gateway, IPRange: spec.IPRange,
		}}}
	}
	var created network.CreateResponse
	err := e.do(ctx, "create network "+name, 0, func(ctx context.Context) (err error) {
		created, err = e.api.NetworkCreate(ctx, name, create)
		return err
	})
	if err != nil {
		return "", e.fail("create network "+name, err)
	}
	return created.ID, nil
}

// ListNetworks returns the Berth networks of pool on this engine.
func (e *Engine) ListNetworks(ctx context.Context, pool string) ([]Network, error) {
	var summaries []network.Summary
	err := e.do(ctx, "list networks", 0, func(ctx context.Context) (err error) {
		summaries, err = e.api.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(
			filters.Arg("label", LabelPool+"="+pool), filters.Arg("label", LabelNetwork))})
		return err
	})
	if err != nil {
		return nil, e.fail("list networks", err)
	}
	networks := make([]Network, 0, len(summaries))
	for _, s := range summaries {
		n, err := networkOf(s)
		if err != nil {
			return nil, fmt.Errorf("engine %s: network %s: %w", e.name, s.Name, err)
		}
		networks = append(networks, n)
	}
	sort.Slice(networks, func(i, j int) bool { return networks[i].Name < networks[j].Name })
	return networks, nil
}

// FindNetwork returns the pool's network of that name, nil when this
// engine has none.
func (e *Engine) FindNetwork(ctx context.Context, pool, name string) (*Network, error) {
	networks, err := e.ListNetworks(ctx, pool)
	if err != nil {
		return nil, err
	}
	for i := range networks {
		if networks[i].Name == name {
			return &networks[i], nil
		}
	}
	return nil, nil
}

func networkOf(s network.Summary) (Network, error) {
	n := Network{ID: s.ID, NetworkSpec: NetworkSpec{
		Pool: s.Labels[LabelPool], Name: s.Labels[LabelNetwork], Driver: s.Driver, Parent: s.Options["parent"],
	}}
	var config networkConfig
	if err := json.Unmarshal([]byte(s.Labels[LabelNetworkConfig]), &config); err != nil {
		return n, fmt.Errorf("label %s is not valid JSON: %w", LabelNetworkConfig, err)
	}
	n.Subnet, n.Gateway, n.Options = config.Subnet, config.Gateway, config.Options
	for k, v := range s.Labels {
		if !strings.HasPrefix(k, LabelPrefix) {
			if n.Labels == nil {
				n.Labels = map[string]string{}
			}
			n.Labels[k] = v
		}
	}
	if len(s.IPAM.Config) > 0 {
		n.IPRange = s.IPAM.Config[0].IPRange
	}
	return n, nil
}

// NetworkUsers names the containers (of any kind, running or not) attached
// to the network with this id.
func (e *Engine) NetworkUsers(ctx context.Context, id string) ([]string, error) {
	var summaries []container.Summary
	err := e.do(ctx, "list containers of network "+id, 0, func(ctx context.Context) (err error) {
		summaries, err = e.api.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("network", id))})
		return err
	})
	if err != nil {
		return nil, e.fail("list containers of network "+id, err)
	}
	names := make([]string, 0, len(summaries))
	for _, s := range summaries {
		name := s.ID
		if len(s.Names) > 0 {
			name = strings.TrimPrefix(s.Names[0], "/")
		}
		names = append(names, name)
	}
	sort.Strings(names)
	return names, nil
}

// RemoveNetwork removes the network; one that is already gone is not an
// error. Docker refuses while containers are attached.
func (e *Engine) RemoveNetwork(ctx context.Context, id string) error {
	err := e.do(ctx, "remove network "+id, 0, func(ctx context.Context) error {
		return e.api.NetworkRemove(ctx, id)
	})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return e.fail("remove network "+id, err)
	}
	return nil
}

// endpoint is how a container joins one of its pool's networks.
func endpoint(a NetworkAttachment) *network.EndpointSettings {
	ep := &network.EndpointSettings{Aliases: a.Aliases}
	if a.IPv4Address != "" {
		ep.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: a.IPv4Address}
	}
	return ep
}

// joinNetworks configures a new container's networks: the first one at
// create (the network mode and the gateway, so ports publish on it), the others
// connected before the start by connectNetworks. Engines before API 1.44
// take one network per create.
func joinNetworks(pool string, attachments []NetworkAttachment, hostConfig *container.HostConfig) *network.NetworkingConfig {
	if len(attachments) == 0 {
		return nil
	}
	first := DockerName(pool, attachments[0].Name)
	hostConfig.NetworkMode = container.NetworkMode(first)
	ep := endpoint(attachments[0])
	// The gateway network is also where ports are published. Engines from
	// API 1.48 honour the priority; older ones take the network whose name
	// sorts first (the networks attribute documents it).
	ep.GwPriority = 1
	return &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{first: ep}}
}

// connectNetworks connects a created container to its other networks.
func (e *Engine) connectNetworks(ctx context.Context, id, pool string, attachments []NetworkAttachment) error {
	for _, a := range attachments {
		name := DockerName(pool, a.Name)
		err := e.do(ctx, "connect container "+id+" to network "+name, 0, func(ctx context.Context) error {
			return e.api.NetworkConnect(ctx, name, id, endpoint(a))
		})
		if err != nil {
			return e.refused("connect container "+id+" to network "+name, "", err)
		}
	}
	return nil
}

// networkAddresses maps the container's IPv4 address on each network of
// its pool, by Berth network name.
func networkAddresses(pool string, networks map[string]*network.EndpointSettings) map[string]string {
	prefix := DockerName(pool, "")
	var out map[string]string
	for name, ep := range networks {
		berthName, ok := strings.CutPrefix(name, prefix)
		if !ok || ep == nil || ep.IPAddress == "" { // a stopped container has no address
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[berthName] = ep.IPAddress
	}
	return out
}
