package scheduler

import (
	"testing"
)

// stateOf builds a host state with some usage, for filter tests.
func stateOf(h Host, used Resources, containers int, ports []portKey, groups ...groupCount) *hostState {
	return &hostState{host: normalizeHost(h), healthy: h.Healthy, used: used, containers: containers, ports: ports, groups: groups}
}

func TestFilters(t *testing.T) {
	s := New(Config{})
	base := host("node1", 2, 1*gib, "zone", "a")
	full := func(h Host, mutate func(*Host)) Host { mutate(&h); return h }
	cases := []struct {
		name       string
		st         *hostState
		req        Request
		wantReason Reason // "" = admitted
		wantDetail string
	}{
		{"fits", stateOf(base, Resources{}, 0, nil), Request{Resources: Resources{MilliCPU: 500, MemoryBytes: 256 * mib}}, "", ""},
		{"unhealthy", stateOf(full(base, func(h *Host) { h.Healthy = false }), Resources{}, 0, nil), Request{}, ReasonUnhealthy, "unhealthy"},
		{"retired", &hostState{host: normalizeHost(base), retired: true}, Request{}, ReasonUnhealthy, "removed from the pool"},
		{"cordoned", stateOf(full(base, func(h *Host) { h.Cordoned = true }), Resources{}, 0, nil), Request{}, ReasonCordoned, "cordoned (takes no new containers)"},
		{"cordoned and pinned", stateOf(full(base, func(h *Host) { h.Cordoned = true }), Resources{}, 0, nil), Request{Host: "node1"}, ReasonCordoned, "cordoned (takes no new containers)"},
		{"pinned elsewhere", stateOf(base, Resources{}, 0, nil), Request{Host: "node3"}, ReasonNotPinned, "not the pinned host node3"},
		{"pinned here", stateOf(base, Resources{}, 0, nil), Request{Host: "node1"}, "", ""},
		{"constraint", stateOf(base, Resources{}, 0, nil), Request{Constraints: []string{"zone in [a, b]", "zone != a"}}, ReasonConstraint, "constraint zone != a"},
		{"node.name", stateOf(base, Resources{}, 0, nil), Request{Constraints: []string{"node.name != node1"}}, ReasonConstraint, "constraint node.name != node1"},
		{"soft constraint does not filter", stateOf(base, Resources{}, 0, nil), Request{Constraints: []string{"~zone == b"}}, "", ""},
		{"slots", stateOf(full(base, func(h *Host) { h.MaxContainers = 2 }), Resources{}, 2, nil), Request{}, ReasonSlots, "max_containers 2 reached"},
		{"slots left", stateOf(full(base, func(h *Host) { h.MaxContainers = 2 }), Resources{}, 1, nil), Request{}, "", ""},
		{"cpu", stateOf(base, Resources{MilliCPU: 1800}, 1, nil), Request{Resources: Resources{MilliCPU: 500}}, ReasonCPU, "0.2 CPU free"},
		{"cpu exact fit", stateOf(base, Resources{MilliCPU: 1500}, 1, nil), Request{Resources: Resources{MilliCPU: 500}}, "", ""},
		{"memory", stateOf(base, Resources{MemoryBytes: gib - 120*mib}, 1, nil), Request{Resources: Resources{MemoryBytes: 256 * mib}}, ReasonMemory, "memory 120MiB free"},
		{"overcommitted fits nothing", stateOf(base, Resources{MemoryBytes: 2 * gib}, 1, nil), Request{}, ReasonMemory, "memory 0B free"},
		{"port in use", stateOf(base, Resources{}, 1, []portKey{8080}), Request{Ports: []PortRequest{{Internal: 80, External: 8080}}}, ReasonPort, "port 8080/tcp in use"},
		{"udp is another space", stateOf(base, Resources{}, 1, []portKey{8080}), Request{Ports: []PortRequest{{Internal: 80, External: 8080, Protocol: "udp"}}}, "", ""},
		{"udp in use", stateOf(base, Resources{}, 1, []portKey{udpBit | 53}), Request{Ports: []PortRequest{{Internal: 53, External: 53, Protocol: "udp"}}}, ReasonPort, "port 53/udp in use"},
		{"range exhausted", stateOf(full(base, func(h *Host) { h.Ports = PortRange{Min: 9000, Max: 9001} }), Resources{}, 1, []portKey{9000}),
			Request{Ports: []PortRequest{{Internal: 80}, {Internal: 81}}}, ReasonPort, "no free port in 9000-9001/tcp"},
		{"range has room", stateOf(full(base, func(h *Host) { h.Ports = PortRange{Min: 9000, Max: 9001} }), Resources{}, 1, []portKey{9000}),
			Request{Ports: []PortRequest{{Internal: 80}}}, "", ""},
		{"explicit port eats the range", stateOf(full(base, func(h *Host) { h.Ports = PortRange{Min: 9000, Max: 9001} }), Resources{}, 1, []portKey{9000}),
			Request{Ports: []PortRequest{{Internal: 80}, {Internal: 81, External: 9001}}}, ReasonPort, "no free port in 9000-9001/tcp"},
		{"max_per_host", stateOf(base, Resources{}, 4, nil, groupCount{"web", 4}), Request{SpreadGroup: "web", MaxPerHost: 4}, ReasonMaxPerHost, "max_per_host 4 reached for spread group web"},
		{"max_per_host other group", stateOf(base, Resources{}, 4, nil, groupCount{"db", 4}), Request{SpreadGroup: "web", MaxPerHost: 4}, "", ""},
		{"pinned by a volume", stateOf(base, Resources{}, 0, nil), Request{Host: "node3", PinnedBy: "volume pgdata-0"}, ReasonNotPinned, "not node3, where volume pgdata-0 lives"},
		{"volume takes no slot", stateOf(full(base, func(h *Host) { h.MaxContainers = 2 }), Resources{}, 2, nil), Request{Volume: true, DiskBytes: gib}, "", ""},
		{"disk", &hostState{host: normalizeHost(full(base, func(h *Host) { h.DiskBytes = 20 * gib })), healthy: true, disk: 10 * gib}, Request{Volume: true, DiskBytes: 11 * gib}, ReasonDisk, "disk 10GiB free"},
		{"disk exact fit", &hostState{host: normalizeHost(full(base, func(h *Host) { h.DiskBytes = 20 * gib })), healthy: true, disk: 10 * gib}, Request{Volume: true, DiskBytes: 10 * gib}, "", ""},
		{"undeclared disk takes any size", &hostState{host: normalizeHost(base), healthy: true, disk: 900 * gib}, Request{Volume: true, DiskBytes: 100 * gib}, "", ""},
		{"no gpus", stateOf(base, Resources{}, 0, nil), Request{Devices: 1}, ReasonDevices, "gpus 0 free"},
		{"gpus counted", &hostState{host: normalizeHost(full(base, func(h *Host) { h.Devices = 2 })), healthy: true, devices: 1}, Request{Devices: 2}, ReasonDevices, "gpus 1 free"},
		{"gpu ids held", &hostState{host: normalizeHost(full(base, func(h *Host) { h.DeviceIDs = []string{"0", "1"} })), healthy: true, devices: 1, deviceIDs: []string{"1"}}, Request{Devices: 1}, "", ""},
		{"gpu ids all held", &hostState{host: normalizeHost(full(base, func(h *Host) { h.DeviceIDs = []string{"0", "1"} })), healthy: true, devices: 2, deviceIDs: []string{"0", "1"}}, Request{Devices: 1}, ReasonDevices, "gpus 0 free"},
		{"max_per_host unlimited", stateOf(base, Resources{}, 4, nil, groupCount{"web", 4}), Request{SpreadGroup: "web"}, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rq, err := s.compile(&c.req)
			if err != nil {
				t.Fatal(err)
			}
			r, ok := s.reject(c.st, rq)
			if ok != (c.wantReason == "") || s.admits(c.st, rq) != ok {
				t.Fatalf("admitted %v (%+v), want reason %q", ok, r, c.wantReason)
			}
			if r.Reason != c.wantReason || r.Detail != c.wantDetail {
				t.Errorf("got %s %q, want %s %q", r.Reason, r.Detail, c.wantReason, c.wantDetail)
			}
		})
	}
}

func TestCompileRejectsBadRequests(t *testing.T) {
	s := New(Config{})
	for name, req := range map[string]Request{
		"negative cpu":          {Resources: Resources{MilliCPU: -1}},
		"negative memory":       {Resources: Resources{MemoryBytes: -1}},
		"bad constraint":        {Constraints: []string{"zone =="}},
		"bad protocol":          {Ports: []PortRequest{{Internal: 80, Protocol: "sctp"}}},
		"bad internal":          {Ports: []PortRequest{{Internal: 0}}},
		"bad external":          {Ports: []PortRequest{{Internal: 80, External: 70000}}},
		"twice the same port":   {Ports: []PortRequest{{Internal: 80, External: 8080}, {Internal: 81, External: 8080, Protocol: "tcp"}}},
		"max_per_host no group": {MaxPerHost: 2},
		"negative max_per_host": {SpreadGroup: "web", MaxPerHost: -1},
		"negative disk":         {DiskBytes: -1},
		"negative devices":      {Devices: -1},
	} {
		if _, err := s.compile(&req); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestAssignPorts(t *testing.T) {
	s := New(Config{})
	h := host("node1", 1, gib)
	h.Ports = PortRange{Min: 9000, Max: 9010}
	st := stateOf(h, Resources{}, 1, []portKey{9000, 9002, udpBit | 9000})
	req := Request{Ports: []PortRequest{{Internal: 80}, {Internal: 81, External: 9001}, {Internal: 82}, {Internal: 53, Protocol: "udp"}}}
	rq, err := s.compile(&req)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		seed uint64 // where in the 11-port range the search starts
		want []PortBinding
	}{
		{0, []PortBinding{{80, 9003, "tcp"}, {81, 9001, "tcp"}, {82, 9004, "tcp"}, {53, 9001, "udp"}}},
		{5, []PortBinding{{80, 9005, "tcp"}, {81, 9001, "tcp"}, {82, 9006, "tcp"}, {53, 9005, "udp"}}},
		{10, []PortBinding{{80, 9010, "tcp"}, {81, 9001, "tcp"}, {82, 9003, "tcp"}, {53, 9010, "udp"}}}, // wraps
	}
	for _, tt := range tests {
		_, got := assignPorts(st, rq, tt.seed)
		if len(got) != len(tt.want) {
			t.Fatalf("seed %d: got %v, want %v", tt.seed, got, tt.want)
		}
		for i := range tt.want {
			if got[i] != tt.want[i] {
				t.Errorf("seed %d, binding %d: got %v, want %v", tt.seed, i, got[i], tt.want[i])
			}
		}
	}
}
