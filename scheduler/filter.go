package scheduler

import (
	"errors"
	"fmt"
	"strconv"
)

// Reason names why a filter rejected a host.
type Reason string

// The rejection reasons, one per feasibility filter.
const (
	ReasonUnhealthy  Reason = "unhealthy"
	ReasonCordoned   Reason = "cordoned"
	ReasonNotPinned  Reason = "not_pinned"
	ReasonConstraint Reason = "constraint"
	ReasonSlots      Reason = "slots"
	ReasonCPU        Reason = "cpu"
	ReasonMemory     Reason = "memory"
	ReasonDisk       Reason = "disk"
	ReasonDevices    Reason = "devices"
	ReasonPort       Reason = "port"
	ReasonMaxPerHost Reason = "max_per_host"
)

// filter is one feasibility stage: admits is the fast check of the
// placement path; explain words the rejection, only when nothing fits.
type filter struct {
	reason  Reason
	admits  func(st *hostState, rq *compiledRequest) bool
	explain func(st *hostState, rq *compiledRequest) string
}

// compiledRequest is a validated request with its constraints parsed and
// its ports sorted out, built once per placement.
type compiledRequest struct {
	req      Request
	hard     []*Constraint
	soft     []*Constraint
	explicit []portKey // requested host ports (External != 0)
	auto     [2]int    // ports to pick from the host's range: [tcp, udp]
	hardBuf  [8]*Constraint
	softBuf  [4]*Constraint
	portBuf  [4]portKey
}

func protocolIndex(k portKey) int {
	if k&udpBit != 0 {
		return 1
	}
	return 0
}

var protocolBases = [2]portKey{0, udpBit}

// compile validates req and prepares it for the filters. The result comes
// from a pool: hand it back with s.requests.Put when done.
func (s *Scheduler) compile(req *Request) (*compiledRequest, error) {
	if err := validateResources(req.Resources); err != nil {
		return nil, fmt.Errorf("request %s: %w", requestName(req), err)
	}
	if req.MaxPerHost < 0 {
		return nil, fmt.Errorf("request %s: max_per_host must not be negative", requestName(req))
	}
	if req.DiskBytes < 0 || req.Devices < 0 {
		return nil, fmt.Errorf("request %s: disk and devices must not be negative", requestName(req))
	}
	if req.MaxPerHost > 0 && req.SpreadGroup == "" {
		return nil, fmt.Errorf("request %s: max_per_host needs a spread group to count", requestName(req))
	}
	rq, _ := s.requests.Get().(*compiledRequest) // the pool's New makes only these
	*rq = compiledRequest{req: *req}
	rq.hard, rq.soft = rq.hardBuf[:0], rq.softBuf[:0]
	for _, text := range req.Constraints {
		c, err := s.constraints.get(text)
		if err != nil {
			s.requests.Put(rq)
			return nil, fmt.Errorf("request %s: %w", requestName(req), err)
		}
		if c.Soft {
			rq.soft = append(rq.soft, c)
		} else {
			rq.hard = append(rq.hard, c)
		}
	}
	rq.explicit = rq.portBuf[:0]
	for _, p := range req.Ports {
		if err := validatePort(p.Internal, p.External, p.Protocol, false); err != nil {
			s.requests.Put(rq)
			return nil, fmt.Errorf("request %s: %w", requestName(req), err)
		}
		if p.External == 0 {
			rq.auto[protocolIndex(makePortKey(p.Protocol, 1))]++
			continue
		}
		k := makePortKey(p.Protocol, p.External)
		for _, e := range rq.explicit {
			if e == k {
				s.requests.Put(rq)
				return nil, fmt.Errorf("request %s: host port %s requested twice", requestName(req), formatPort(k))
			}
		}
		rq.explicit = append(rq.explicit, k)
	}
	return rq, nil
}

func validateResources(r Resources) error {
	if r.MilliCPU < 0 || r.MemoryBytes < 0 {
		return errors.New("CPU and memory must not be negative")
	}
	return nil
}

// validatePort checks one port; observed ports (restoring) may lack an
// external port.
func validatePort(internal, external int, protocol string, observed bool) error {
	if protocol != "" && protocol != "tcp" && protocol != "udp" {
		return fmt.Errorf("port protocol %q: want tcp or udp", protocol)
	}
	if internal < 1 && !observed || internal > 65535 {
		return fmt.Errorf("internal port %d: want 1-65535", internal)
	}
	if external < 0 || external > 65535 {
		return fmt.Errorf("external port %d: want 0 (any free port) or 1-65535", external)
	}
	return nil
}

func requestName(req *Request) string {
	if req.Name != "" {
		return req.Name
	}
	return req.Key
}

func formatPort(k portKey) string {
	if k&udpBit != 0 {
		return strconv.Itoa(k.port()) + "/udp"
	}
	return strconv.Itoa(k.port()) + "/tcp"
}

// Health: unhealthy hosts, and hosts removed from the pool, take nothing.
func admitsHealthy(st *hostState, _ *compiledRequest) bool {
	return st.healthy && !st.retired
}

func explainHealthy(st *hostState, _ *compiledRequest) string {
	if st.retired {
		return "removed from the pool"
	}
	if st.sickness != "" {
		return "unhealthy: " + st.sickness
	}
	return "unhealthy"
}

// Cordon: a cordoned host keeps what it holds and takes nothing new.
func admitsUncordoned(st *hostState, _ *compiledRequest) bool {
	return !st.host.Cordoned
}

func explainCordoned(*hostState, *compiledRequest) string {
	return "cordoned (takes no new containers)"
}

// Pinned host: a request that names a host goes there or nowhere.
func admitsPinned(st *hostState, rq *compiledRequest) bool {
	return rq.req.Host == "" || rq.req.Host == st.host.Name
}

func explainPinned(_ *hostState, rq *compiledRequest) string {
	if rq.req.PinnedBy != "" {
		return "not " + rq.req.Host + ", where " + rq.req.PinnedBy + " lives"
	}
	return "not the pinned host " + rq.req.Host
}

// Constraints: every hard rule holds on the host's labels.
func admitsConstraints(st *hostState, rq *compiledRequest) bool {
	return firstBroken(st, rq) == nil
}

func firstBroken(st *hostState, rq *compiledRequest) *Constraint {
	for _, c := range rq.hard {
		if !st.host.satisfies(c) {
			return c
		}
	}
	return nil
}

func explainConstraints(st *hostState, rq *compiledRequest) string {
	return "constraint " + firstBroken(st, rq).String()
}

// Slots: the host's max_containers. Volumes take no slot.
func admitsSlots(st *hostState, rq *compiledRequest) bool {
	return rq.req.Volume || st.host.MaxContainers == 0 || st.containers < st.host.MaxContainers
}

func explainSlots(st *hostState, _ *compiledRequest) string {
	return "max_containers " + strconv.Itoa(st.host.MaxContainers) + " reached"
}

// CPU and memory: what is held plus what is asked stays within capacity.
// An overcommitted host (observed reality, or a shrunk capacity) fits
// nothing new.
func admitsCPU(st *hostState, rq *compiledRequest) bool {
	return st.used.MilliCPU+rq.req.Resources.MilliCPU <= st.host.Capacity.MilliCPU
}

func explainCPU(st *hostState, _ *compiledRequest) string {
	return formatCPU(max(st.free().MilliCPU, 0)) + " free"
}

func admitsMemory(st *hostState, rq *compiledRequest) bool {
	return st.used.MemoryBytes+rq.req.Resources.MemoryBytes <= st.host.Capacity.MemoryBytes
}

func explainMemory(st *hostState, _ *compiledRequest) string {
	return "memory " + formatBytes(max(st.free().MemoryBytes, 0)) + " free"
}

// Disk: volumes' sizes stay within the host's declared disk; a host that
// declares none takes any size.
func admitsDisk(st *hostState, rq *compiledRequest) bool {
	return rq.req.DiskBytes == 0 || st.diskFits(rq.req.DiskBytes)
}

func explainDisk(st *hostState, _ *compiledRequest) string {
	return "disk " + formatBytes(max(st.host.DiskBytes-st.disk, 0)) + " free"
}

// Devices: enough of the host's devices (GPUs) are free; when the host
// names them, enough named ids that no reservation holds.
func admitsDevices(st *hostState, rq *compiledRequest) bool {
	return rq.req.Devices == 0 || st.freeDevices() >= rq.req.Devices
}

func explainDevices(st *hostState, _ *compiledRequest) string {
	return "gpus " + strconv.Itoa(st.freeDevices()) + " free"
}

// Ports: requested host ports are free, and the host's range has enough
// free ports for the rest.
func admitsPorts(st *hostState, rq *compiledRequest) bool {
	return portConflict(st, rq) == ""
}

func explainPorts(st *hostState, rq *compiledRequest) string {
	return portConflict(st, rq)
}

// portConflict words the first port problem, or returns "".
func portConflict(st *hostState, rq *compiledRequest) string {
	for _, k := range rq.explicit {
		if st.hasPort(k) {
			return "port " + formatPort(k) + " in use"
		}
	}
	for proto, need := range rq.auto {
		if need > 0 && freeInRange(st, rq, protocolBases[proto]) < need {
			r := st.host.Ports
			return "no free port in " + strconv.Itoa(r.Min) + "-" + strconv.Itoa(r.Max) + "/" + [2]string{"tcp", "udp"}[proto]
		}
	}
	return ""
}

// freeInRange counts the range's ports that neither the host nor the
// request's explicit ports hold.
func freeInRange(st *hostState, rq *compiledRequest, base portKey) int {
	r := st.host.Ports
	if r.Min > r.Max {
		return 0
	}
	free := r.Max - r.Min + 1 - st.portsUsedIn(base, r.Min, r.Max)
	for _, k := range rq.explicit {
		if k&udpBit == base && k.port() >= r.Min && k.port() <= r.Max {
			free--
		}
	}
	return free
}

// Spread group: at most max_per_host members of the group per host.
func admitsMaxPerHost(st *hostState, rq *compiledRequest) bool {
	return rq.req.MaxPerHost == 0 || st.groupCount(rq.req.SpreadGroup) < rq.req.MaxPerHost
}

func explainMaxPerHost(_ *hostState, rq *compiledRequest) string {
	return "max_per_host " + strconv.Itoa(rq.req.MaxPerHost) + " reached for spread group " + rq.req.SpreadGroup
}

// admits runs every filter.
func (s *Scheduler) admits(st *hostState, rq *compiledRequest) bool {
	for i := range s.filters {
		if !s.filters[i].admits(st, rq) {
			return false
		}
	}
	return true
}

// reject returns the first filter st fails, worded; ok when it passes all.
func (s *Scheduler) reject(st *hostState, rq *compiledRequest) (Rejection, bool) {
	for _, f := range s.filters {
		if !f.admits(st, rq) {
			return Rejection{Host: st.host.Name, Reason: f.reason, Detail: f.explain(st, rq)}, false
		}
	}
	return Rejection{}, true
}

// assignPorts picks the request's ports on st: requested ones as asked,
// the others free ones in the host's range. st must admit rq.
//
// A free port is searched from a random point of the range, wrapping:
// other processes placing on the same engine (verified against it, see
// DESIGN.md) then rarely pick the same port and have to yield.
func assignPorts(st *hostState, rq *compiledRequest, seed uint64) ([]portKey, []PortBinding) {
	if len(rq.req.Ports) == 0 {
		return nil, nil
	}
	keys := make([]portKey, 0, len(rq.req.Ports))
	bindings := make([]PortBinding, 0, len(rq.req.Ports))
	taken := func(k portKey) bool {
		for _, t := range keys {
			if t == k {
				return true
			}
		}
		for _, e := range rq.explicit {
			if e == k {
				return true
			}
		}
		return st.hasPort(k)
	}
	for _, p := range rq.req.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = "tcp"
		}
		k := makePortKey(proto, p.External)
		if p.External == 0 {
			lo, size := st.host.Ports.Min, max(st.host.Ports.Max-st.host.Ports.Min+1, 1)
			offset := int(seed % uint64(size))
			for i := range size {
				if k = makePortKey(proto, lo+(offset+i)%size); !taken(k) {
					break
				}
			}
		}
		keys = append(keys, k)
		bindings = append(bindings, PortBinding{Internal: p.Internal, External: k.port(), Protocol: proto})
	}
	return keys, bindings
}
