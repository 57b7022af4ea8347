package scheduler

import (
	"cmp"
	"slices"
	"sort"
	"sync/atomic"
)

// hostSlot is one host's place in the pool. Its state is an immutable
// value swapped atomically: a reservation loads it, checks fit, builds the
// next value and compare-and-swaps, so hosts never need a lock.
type hostSlot struct {
	name  string
	state atomic.Pointer[hostState]
}

// hostState is one immutable version of a host's configuration and usage.
type hostState struct {
	host       *hostConfig // shared by versions until SetHosts changes it
	healthy    bool
	sickness   string // why the host is unhealthy, when known
	retired    bool   // removed from the pool: fits nothing, still accounts what is on it
	used       Resources
	containers int
	ports      []portKey // sorted; duplicates only when observed containers clash
	groups     []groupCount
	volumes    int
	disk       int64    // volume space held
	devices    int      // devices held, with or without ids
	deviceIDs  []string // held device ids, sorted; duplicates only when observed containers clash
}

// portKey packs a protocol and a port: tcp and udp are separate spaces.
type portKey uint32

const udpBit portKey = 1 << 16

func makePortKey(protocol string, port int) portKey {
	if protocol == "udp" {
		return udpBit | portKey(port)
	}
	return portKey(port)
}

func (k portKey) port() int { return int(k &^ udpBit) }

type groupCount struct {
	group string
	n     int
}

// hostTable is the pool's host set: sorted by name, replaced as a whole.
type hostTable struct {
	list  []*hostSlot
	index map[string]int
}

func (t *hostTable) slot(name string) *hostSlot {
	if i, ok := t.index[name]; ok {
		return t.list[i]
	}
	return nil
}

// hostConfig is a host as configured (immutable), with a memo of which
// cached constraints it satisfies: labels only change with a new config,
// so each rule is evaluated once per host instead of once per placement.
type hostConfig struct {
	Host
	memo [memoRules]atomic.Uint32 // by Constraint.memoID: 0 unknown, 1 holds, 2 broken
}

const memoRules = 64

// normalizeHost copies h so callers cannot change it under the scheduler,
// and fills defaults.
func normalizeHost(h Host) *hostConfig {
	n := &hostConfig{Host: h}
	n.Labels = make(map[string]string, len(h.Labels))
	for k, v := range h.Labels {
		n.Labels[k] = v
	}
	if n.Ports == (PortRange{}) {
		n.Ports = DefaultPortRange
	}
	if len(h.DeviceIDs) > 0 {
		n.DeviceIDs = slices.Clone(h.DeviceIDs)
		n.Devices = len(h.DeviceIDs)
	}
	return n
}

// satisfies evaluates c on the host, through the memo when c has a slot.
func (cfg *hostConfig) satisfies(c *Constraint) bool {
	if c.memoID <= 0 || c.memoID > memoRules {
		return c.Matches(cfg.Name, cfg.Labels)
	}
	m := &cfg.memo[c.memoID-1]
	switch m.Load() {
	case 1:
		return true
	case 2:
		return false
	}
	ok := c.Matches(cfg.Name, cfg.Labels)
	if ok {
		m.Store(1)
	} else {
		m.Store(2)
	}
	return ok
}

func (st *hostState) groupCount(group string) int {
	for _, g := range st.groups {
		if g.group == group {
			return g.n
		}
	}
	return 0
}

func (st *hostState) hasPort(k portKey) bool {
	_, found := slices.BinarySearch(st.ports, k)
	return found
}

// portsUsedIn counts held ports of one protocol inside [lo, hi].
func (st *hostState) portsUsedIn(base portKey, lo, hi int) int {
	from, _ := slices.BinarySearch(st.ports, base|portKey(lo))
	to, _ := slices.BinarySearch(st.ports, base|portKey(hi+1))
	return to - from
}

// load is the host's utilisation, the sum of its CPU and memory fractions;
// rankers compare it.
func (st *hostState) load() float64 {
	var l float64
	if c := st.host.Capacity.MilliCPU; c > 0 {
		l += float64(st.used.MilliCPU) / float64(c)
	}
	if m := st.host.Capacity.MemoryBytes; m > 0 {
		l += float64(st.used.MemoryBytes) / float64(m)
	}
	return l
}

// diskFits reports whether size more bytes of volumes fit; a host that
// declares no disk takes any size.
func (st *hostState) diskFits(size int64) bool {
	return st.host.DiskBytes == 0 || st.disk+size <= st.host.DiskBytes
}

// freeDevices is how many more devices the host can hand out. When it
// names its devices, only named ids that no reservation holds count.
func (st *hostState) freeDevices() int {
	free := st.host.Devices - st.devices
	if len(st.host.DeviceIDs) > 0 {
		unheld := 0
		for _, id := range st.host.DeviceIDs {
			if !st.holdsDevice(id) {
				unheld++
			}
		}
		free = min(free, unheld)
	}
	return max(free, 0)
}

func (st *hostState) holdsDevice(id string) bool {
	_, found := slices.BinarySearch(st.deviceIDs, id)
	return found
}

// pickDevices chooses n free device ids, in the host's declared order; nil
// when the host does not name its devices. st must have n free.
func (st *hostState) pickDevices(n int) []string {
	if n == 0 || len(st.host.DeviceIDs) == 0 {
		return nil
	}
	ids := make([]string, 0, n)
	for _, id := range st.host.DeviceIDs {
		if len(ids) == n {
			break
		}
		if !st.holdsDevice(id) && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

func (st *hostState) free() Resources {
	return Resources{
		MilliCPU:    st.host.Capacity.MilliCPU - st.used.MilliCPU,
		MemoryBytes: st.host.Capacity.MemoryBytes - st.used.MemoryBytes,
	}
}

// change is what one reservation adds to (sign 1) or takes from (sign -1)
// a host.
type change struct {
	resources Resources
	ports     []portKey
	group     string
	sign      int
	volume    bool // a volume: counted apart from containers
	disk      int64
	devices   int
	deviceIDs []string
}

// apply returns the next version of st with c applied. It checks nothing:
// callers check fit first (or, restoring, accept reality).
func (st *hostState) apply(c change) *hostState {
	box := &hostStateBox{}
	next := &box.st
	*next = hostState{
		host:       st.host,
		healthy:    st.healthy,
		sickness:   st.sickness,
		retired:    st.retired,
		containers: st.containers,
		volumes:    st.volumes,
		used: Resources{
			MilliCPU:    st.used.MilliCPU + int64(c.sign)*c.resources.MilliCPU,
			MemoryBytes: st.used.MemoryBytes + int64(c.sign)*c.resources.MemoryBytes,
		},
		ports:     st.ports,
		groups:    st.groups,
		disk:      st.disk + int64(c.sign)*c.disk,
		devices:   st.devices + c.sign*c.devices,
		deviceIDs: st.deviceIDs,
	}
	if c.volume {
		next.volumes += c.sign
	} else {
		next.containers += c.sign
	}
	if len(c.deviceIDs) > 0 {
		next.deviceIDs = applySorted(st.deviceIDs, c.deviceIDs, c.sign)
	}
	if len(c.ports) > 0 {
		next.ports = applySorted(st.ports, c.ports, c.sign)
	}
	if c.group != "" {
		next.groups = applyGroup(box.groups[:0], st.groups, c.group, c.sign)
	}
	return next
}

// hostStateBox allocates a state together with room for a few spread
// groups: one allocation per reservation instead of two.
type hostStateBox struct {
	st     hostState
	groups [2]groupCount
}

// applySorted adds items to (sign 1) or removes them from (sign -1) a
// sorted list, returning a new list: held ports, held device ids.
func applySorted[T cmp.Ordered](held, items []T, sign int) []T {
	if sign > 0 {
		out := make([]T, 0, len(held)+len(items))
		out = append(append(out, held...), items...)
		slices.Sort(out)
		return out
	}
	out := slices.Clone(held)
	for _, k := range items {
		if i, found := slices.BinarySearch(out, k); found {
			out = slices.Delete(out, i, i+1)
		}
	}
	return out
}

// applyGroup writes groups with group's count changed into out.
func applyGroup(out, groups []groupCount, group string, sign int) []groupCount {
	found := false
	for _, g := range groups {
		if g.group == group {
			found = true
			g.n += sign
			if g.n <= 0 {
				continue
			}
		}
		out = append(out, g)
	}
	if !found && sign > 0 {
		out = append(out, groupCount{group: group, n: 1})
	}
	return out
}

// withHost returns st under a new configuration, usage kept.
func (st *hostState) withHost(h *hostConfig, healthy, retired bool) *hostState {
	next := *st
	next.host, next.healthy, next.retired = h, healthy, retired
	if healthy {
		next.sickness = ""
	}
	return &next
}

// update applies f to the slot's state until the swap wins.
func (s *hostSlot) update(f func(*hostState) *hostState) *hostState {
	for {
		cur := s.state.Load()
		next := f(cur)
		if s.state.CompareAndSwap(cur, next) {
			return next
		}
	}
}

// newTable builds a sorted table of slots.
func newTable(slots []*hostSlot) *hostTable {
	sort.Slice(slots, func(i, j int) bool { return slots[i].name < slots[j].name })
	t := &hostTable{list: slots, index: make(map[string]int, len(slots))}
	for i, s := range slots {
		t.index[s.name] = i
	}
	return t
}
