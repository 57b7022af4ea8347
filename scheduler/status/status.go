package status

import (
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/go-units"

	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

// FragmentPath is where the page fetches its live part.
const FragmentPath = "/status/fragment"

// keepFailures bounds the recent failures kept in memory.
const keepFailures = 20

//go:embed templates/*.html
var files embed.FS

var (
	pageTemplate     = template.Must(template.ParseFS(files, "templates/page.html"))
	fragmentTemplate = template.Must(template.ParseFS(files, "templates/fragment.html"))
)

// Page serves the status page over the API handler it asks.
type Page struct {
	api   http.Handler
	clock func() time.Time

	mu       sync.Mutex // guards failures
	failures []Failure  // newest last
}

// Failure is one placement berthd refused, with its explanation.
type Failure struct {
	At      time.Time
	Pool    string
	Code    string
	Message string
}

// New returns the page; apiHandler answers /v1 (berthd's own server, or a
// replica's proxy to the leader).
func New(apiHandler http.Handler) *Page {
	return &Page{api: apiHandler, clock: time.Now}
}

// RecordFailure remembers a refused placement (the newest few are kept).
func (p *Page) RecordFailure(pool, code, message string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failures = append(p.failures, Failure{At: p.clock(), Pool: pool, Code: code, Message: message})
	if len(p.failures) > keepFailures {
		p.failures = p.failures[len(p.failures)-keepFailures:]
	}
}

// Register adds the page (/) and its fragment to mux.
func (p *Page) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = pageTemplate.Execute(w, struct{ FragmentPath string }{FragmentPath})
	})
	mux.HandleFunc("GET "+FragmentPath, p.fragment)
}

// view is what the fragment template shows.
type view struct {
	Pools    []poolView
	Leases   []leaseView
	Failures []failureView
}

type poolView struct {
	Name, Strategy string
	Hosts          []hostView
}

type hostView struct {
	Name, State, Cause string
	CPU, Memory, Slots bar
	// Disk and GPUs are nil on a host that declares none: the scheduler
	// does not account them there.
	Disk, GPUs *bar
	GPUsHeld   string // the ids containers hold, comma-separated
}

// bar is one used/capacity gauge; Free is what the API reports free (the
// slots of a host without a limit have none to report).
type bar struct {
	Used, Capacity, Free int64
	Percent              int
	Label, FreeLabel     string
}

type leaseView struct {
	Holder, Pool, Name, Host, Age, ExpiresIn string
}

type failureView struct {
	When, Pool, Code, Message string
}

// fragment renders the live part from the API's answers, asked with the
// caller's own Authorization header: an error of the API is the page's.
func (p *Page) fragment(w http.ResponseWriter, r *http.Request) {
	var usage api.UsageList
	var pools api.PoolList
	var leases api.LeaseList
	for _, q := range []struct {
		path string
		into any
	}{{api.PathUsage, &usage}, {api.PathPools, &pools}, {api.PathLeases, &leases}} {
		if status, body := p.get(r, q.path); status != http.StatusOK {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write(body)
			return
		} else if err := json.Unmarshal(body, q.into); err != nil {
			http.Error(w, fmt.Sprintf("decoding %s: %v", q.path, err), http.StatusBadGateway)
			return
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = fragmentTemplate.Execute(w, p.view(usage, pools, leases))
}

func (p *Page) get(r *http.Request, path string) (int, []byte) {
	req := httptest.NewRequestWithContext(r.Context(), http.MethodGet, path, nil)
	req.Header.Set("Authorization", r.Header.Get("Authorization"))
	rec := httptest.NewRecorder()
	p.api.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

func (p *Page) view(usage api.UsageList, pools api.PoolList, leases api.LeaseList) view {
	specs := map[string]backend.PoolSpec{}
	for _, st := range pools.Pools {
		specs[st.Spec.Name] = st.Spec
	}
	var v view
	for _, pu := range usage.Pools {
		pv := poolView{Name: pu.Name, Strategy: pu.Strategy}
		for _, h := range pu.Hosts {
			hv := hostView{Name: h.Name, State: "healthy",
				CPU:    cpuUnit.bar(h.Reserved.MilliCPU, h.Capacity.MilliCPU, h.Free.MilliCPU),
				Memory: byteUnit.bar(h.Reserved.MemoryBytes, h.Capacity.MemoryBytes, h.Free.MemoryBytes),
				Slots:  slotsBar(h.Containers, h.MaxContainers),
			}
			if h.DiskBytes > 0 {
				disk := byteUnit.bar(h.DiskReserved, h.DiskBytes, h.DiskFree)
				hv.Disk = &disk
			}
			if h.GPUs > 0 {
				devices := gpuUnit.bar(int64(h.GPUsReserved), int64(h.GPUs), int64(h.GPUsFree))
				hv.GPUs, hv.GPUsHeld = &devices, strings.Join(h.GPUIDsHeld, ",")
			}
			spec := specs[pu.Name].Hosts[h.Name]
			switch {
			case spec.Lost:
				hv.State, hv.Cause = "cordoned", "marked lost in the pool"
			case spec.Cordoned:
				hv.State, hv.Cause = "cordoned", "cordoned in the pool"
			case !h.Healthy:
				hv.State, hv.Cause = "unhealthy", "its engine does not answer"
			}
			pv.Hosts = append(pv.Hosts, hv)
		}
		v.Pools = append(v.Pools, pv)
	}
	now := p.clock()
	sort.Slice(leases.Leases, func(i, j int) bool { return leases.Leases[i].Created.Before(leases.Leases[j].Created) })
	for _, l := range leases.Leases {
		v.Leases = append(v.Leases, leaseView{Holder: l.Holder, Pool: l.Pool, Name: l.Name, Host: l.Host,
			Age: roughly(now.Sub(l.Created)), ExpiresIn: roughly(l.Expires.Sub(now))})
	}
	p.mu.Lock()
	for i := len(p.failures) - 1; i >= 0; i-- {
		f := p.failures[i]
		v.Failures = append(v.Failures, failureView{When: f.At.UTC().Format("15:04:05") + " (" + roughly(now.Sub(f.At)) + " ago)", Pool: f.Pool, Code: f.Code, Message: f.Message})
	}
	p.mu.Unlock()
	return v
}

// unit formats one kind of quantity for the bars' labels.
type unit struct {
	format func(int64) string
	suffix string
}

var (
	cpuUnit  = unit{func(milli int64) string { return fmt.Sprintf("%.2f", float64(milli)/1000) }, " CPU"}
	byteUnit = unit{func(n int64) string { return units.BytesSize(float64(n)) }, ""}
	gpuUnit  = unit{func(n int64) string { return strconv.FormatInt(n, 10) }, " GPU"}
	slotUnit = unit{func(n int64) string { return strconv.FormatInt(n, 10) }, ""}
)

func (u unit) bar(used, capacity, free int64) bar {
	b := bar{Used: used, Capacity: capacity, Free: free,
		Label:     u.format(used) + " / " + u.format(capacity) + u.suffix,
		FreeLabel: u.format(free) + u.suffix + " free"}
	if capacity > 0 {
		b.Percent = int(min(100, used*100/capacity))
	}
	return b
}

// slotsBar is a host's container slots; zero slots means no limit.
func slotsBar(containers, most int) bar {
	if most == 0 {
		return bar{Used: int64(containers), Label: fmt.Sprintf("%d (no limit)", containers)}
	}
	return slotUnit.bar(int64(containers), int64(most), int64(max(0, most-containers)))
}

func roughly(d time.Duration) string {
	if d < 0 {
		return "expired"
	}
	return d.Round(time.Second).String()
}
