package scheduler

import (
	"sort"
	"strconv"
	"strings"
)

// Rejection is why one host cannot take a request.
type Rejection struct {
	Host   string
	Reason Reason
	Detail string // e.g. "memory 120MiB free", "constraint zone != c"
}

// NoFitError says that no host fits a request, and why each host did not.
type NoFitError struct {
	Request    string // the request's name (its key when unnamed)
	Needs      Resources
	Rejections []Rejection
	// Resize marks an in-place resize that the reservation's own host
	// cannot take (Rejections then holds that host only).
	Resize    bool
	DiskBytes int64 // volume space asked for
	Devices   int   // devices asked for
	Volume    bool  // the request is a volume: it needs disk only
}

// needs words what the request asks for.
func (e *NoFitError) needs() string {
	var parts []string
	if !e.Volume {
		parts = append(parts, formatResources(e.Needs))
	}
	if e.DiskBytes > 0 || e.Volume {
		parts = append(parts, formatBytes(e.DiskBytes)+" disk")
	}
	if e.Devices > 0 {
		parts = append(parts, strconv.Itoa(e.Devices)+map[bool]string{false: " GPU", true: " GPUs"}[e.Devices > 1])
	}
	return strings.Join(parts, ", ")
}

// summarizeAbove is how many rejections are listed host by host; beyond
// it they are counted by reason.
const summarizeAbove = 8

func (e *NoFitError) Error() string {
	var b strings.Builder
	if e.Resize {
		b.WriteString("cannot resize " + e.Request + " to " + formatResources(e.Needs) + ": ")
	} else {
		b.WriteString("no host fits " + e.Request + " (needs " + e.needs() + "): ")
	}
	switch {
	case len(e.Rejections) == 0:
		b.WriteString("the pool has no hosts")
	case len(e.Rejections) <= summarizeAbove:
		for i, r := range e.Rejections {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(r.Host + ": " + r.Detail)
		}
	default:
		for i, g := range summarize(e.Rejections) {
			if i > 0 {
				b.WriteString("; ")
			}
			if g.hosts == 1 {
				b.WriteString(g.example + ": " + g.why)
			} else {
				b.WriteString(formatCount(g.hosts) + " hosts: " + g.why)
			}
		}
	}
	return b.String()
}

type rejectionGroup struct {
	why     string
	hosts   int
	example string // a host of the group, named when it is the only one
}

// summarize counts rejections by what they say, most common first.
// Host-specific details (how much memory is free) collapse into their
// reason; host-independent ones (the broken constraint) stay as said.
func summarize(rs []Rejection) []rejectionGroup {
	index := map[string]int{}
	var groups []rejectionGroup
	for _, r := range rs {
		why := r.Detail
		switch r.Reason {
		case ReasonCPU:
			why = "insufficient CPU"
		case ReasonMemory:
			why = "insufficient memory"
		case ReasonSlots:
			why = "max_containers reached"
		case ReasonDisk:
			why = "insufficient disk"
		case ReasonDevices:
			why = "not enough free gpus"
		case ReasonPort:
			if strings.HasPrefix(r.Detail, "no free port") {
				why = "no free port in range"
			}
		}
		i, ok := index[why]
		if !ok {
			i = len(groups)
			index[why] = i
			groups = append(groups, rejectionGroup{why: why, example: r.Host})
		}
		groups[i].hosts++
	}
	sort.SliceStable(groups, func(i, j int) bool { return groups[i].hosts > groups[j].hosts })
	return groups
}
