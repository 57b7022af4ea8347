package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/testenv"
	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

// screenshotEnv names where TestStatusPage writes its screenshot (make
// status-page sets docs/status-page.png); a temporary file otherwise.
const screenshotEnv = "BERTH_STATUS_SCREENSHOT"

// chromium runs headless Chromium kept off the network, on a new profile.
func chromium(t *testing.T, args ...string) []byte {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("headless Chromium is needed (apt-get install chromium; make status-page installs it): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=8000", "--window-size=1280,1000"}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stderr []byte
	out, err := cmd.Output()
	if exit := (*exec.ExitError)(nil); errors.As(err, &exit) {
		stderr = exit.Stderr
	}
	if err != nil {
		t.Fatalf("chromium %v: %v; %s", args, err, stderr)
	}
	return out
}

var (
	hostRow  = regexp.MustCompile(`(?s)<tr class="host" ([^>]*)>(.*?)</tr>`)
	dataAttr = regexp.MustCompile(`data-([a-z-]+)="([^"]*)"`)
)

// shownHost is one host row of the page: its data-* attributes and text.
type shownHost struct {
	attrs map[string]string
	cells string
}

func shownHosts(dom string) map[string]shownHost {
	hosts := map[string]shownHost{}
	for _, row := range hostRow.FindAllStringSubmatch(dom, -1) {
		h := shownHost{attrs: map[string]string{}, cells: row[2]}
		for _, a := range dataAttr.FindAllStringSubmatch(row[1], -1) {
			h.attrs[a[1]] = a[2]
		}
		hosts[h.attrs["host"]] = h
	}
	return hosts
}

// The status page, driven in headless Chromium: with the token in the URL
// it loads its live part by itself; the hosts, their numbers (CPU, memory,
// containers, and disk and GPUs on the host that declares them, with the
// volume's size and the GPU a container holds) and states, the leases and
// the failure it shows are the API's. A screenshot is taken.
func TestStatusPage(t *testing.T) {
	env := testenv.Require(t)
	cleanPool(t, env, "page1")
	b := start(t, http.DefaultClient, []string{"BERTHD_ADMIN_TOKEN=" + adminToken}, "--data-dir", t.TempDir(), "--engines", enginesFile(t, env))
	b.waitReady(t)
	spec := testPool(env, "page1", 8, 61800)
	cordoned := env.Engines[len(env.Engines)-1].Name
	devices := env.Engines[0].Name // declares disk and GPUs
	for name, h := range spec.Hosts {
		h.MaxContainers = 8
		h.Cordoned = name == cordoned
		if name == devices {
			h.DiskBytes, h.GPUs, h.GPUIDs = 1<<30, 2, []string{"GPU-a", "GPU-b"}
		}
		spec.Hosts[name] = h
	}
	decodeAs[backend.PoolStatus](t, b.settle(t, "PUT", api.PoolPath("page1"), "pool", spec), http.StatusOK)
	lease := decodeAs[api.Lease](t, b.do("POST", api.PathLeases, adminToken, "lease-0", api.LeaseRequest{Spec: webSpec(env, "page1", "w0")}), http.StatusOK)
	decodeAs[backend.ContainerState](t, b.settle(t, "POST", api.PathContainers, "create-0", api.CreateRequest{Spec: webSpec(env, "page1", "w0"), LeaseID: lease.ID, PlannedHost: lease.Host}), http.StatusCreated)
	for i := 1; i <= 2; i++ {
		decodeAs[api.Lease](t, b.do("POST", api.PathLeases, adminToken, fmt.Sprintf("lease-%d", i), api.LeaseRequest{Spec: webSpec(env, "page1", fmt.Sprintf("w%d", i))}), http.StatusOK)
	}
	huge := webSpec(env, "page1", "huge")
	huge.Resources.MilliCPU = 64000
	if a := b.do("POST", api.PathLeases, adminToken, "lease-huge", api.LeaseRequest{Spec: huge}); a.code() != api.CodeNoFit {
		t.Fatalf("a lease that fits nowhere: %d %s", a.status, a.body)
	}
	decodeAs[backend.VolumeState](t, b.settle(t, "POST", api.PathVolumes, "volume-0", api.VolumeCreateRequest{
		Spec: backend.VolumeSpec{Pool: "page1", Name: "page1-data", SizeBytes: 300 << 20, Host: devices}}), http.StatusCreated)
	trainer := webSpec(env, "page1", "trainer")
	trainer.Ports, trainer.GPUs = nil, 1
	held := decodeAs[backend.ContainerState](t, b.settle(t, "POST", api.PathContainers, "create-trainer", api.CreateRequest{Spec: trainer}), http.StatusCreated)

	page := b.url + "/#token=" + adminToken
	dom := string(chromium(t, "--dump-dom", page))
	usage := decodeAs[backend.PoolUsage](t, b.do("GET", api.PoolUsagePath("page1"), adminToken, "", nil), http.StatusOK)
	shown := shownHosts(dom)
	if len(shown) != len(usage.Hosts) {
		t.Fatalf("the page shows %d hosts, the API %d; page: %s", len(shown), len(usage.Hosts), dom)
	}
	for _, h := range usage.Hosts {
		row, ok := shown[h.Name]
		if !ok {
			t.Errorf("host %s is not on the page", h.Name)
			continue
		}
		want := map[string]string{
			"cpu-used": strconv.FormatInt(h.Reserved.MilliCPU, 10), "cpu-capacity": strconv.FormatInt(h.Capacity.MilliCPU, 10),
			"memory-used": strconv.FormatInt(h.Reserved.MemoryBytes, 10), "memory-capacity": strconv.FormatInt(h.Capacity.MemoryBytes, 10),
			"containers": strconv.Itoa(h.Containers),
			"state":      map[bool]string{true: "cordoned", false: "healthy"}[h.Name == cordoned],
		}
		if h.Name == devices {
			// Only the volume's size and the trainer's GPU are held there.
			if h.DiskReserved != 300<<20 || h.DiskBytes != 1<<30 || h.DiskFree != 1<<30-300<<20 ||
				h.GPUsReserved != 1 || h.GPUsFree != 1 || !slices.Equal(h.GPUIDsHeld, held.GPUIDs) || len(held.GPUIDs) != 1 {
				t.Errorf("the API reports %s with disk %d of %d (%d free), GPUs %d (%d free, %v held); want the 300MiB volume and the trainer's GPU %v",
					h.Name, h.DiskReserved, h.DiskBytes, h.DiskFree, h.GPUsReserved, h.GPUsFree, h.GPUIDsHeld, held.GPUIDs)
			}
			maps.Copy(want, map[string]string{
				"disk-used": strconv.FormatInt(h.DiskReserved, 10), "disk-capacity": strconv.FormatInt(h.DiskBytes, 10),
				"disk-free": strconv.FormatInt(h.DiskFree, 10),
				"gpus-used": strconv.Itoa(h.GPUsReserved), "gpus-capacity": strconv.Itoa(h.GPUs),
				"gpus-free": strconv.Itoa(h.GPUsFree), "gpus-held": strings.Join(h.GPUIDsHeld, ","),
			})
			for _, text := range []string{"300MiB / 1GiB", "724MiB free", "1 / 2 GPU", "1 GPU free", "held: " + strings.Join(held.GPUIDs, ",")} {
				if !strings.Contains(row.cells, text) {
					t.Errorf("host %s: the page does not show %q:\n%s", h.Name, text, row.cells)
				}
			}
		} else if !strings.Contains(row.cells, "not accounted (no disk declared)") || !strings.Contains(row.cells, "not accounted (no gpus declared)") {
			t.Errorf("host %s declares no disk and no GPUs, the page does not say they are not accounted:\n%s", h.Name, row.cells)
		}
		for attr, w := range want {
			if row.attrs[attr] != w {
				t.Errorf("host %s: the page shows %s=%q, the API %q", h.Name, attr, row.attrs[attr], w)
			}
		}
		for attr := range row.attrs {
			if _, ok := want[attr]; !ok && attr != "host" {
				t.Errorf("host %s: the page shows %s=%q, which the API does not report for it", h.Name, attr, row.attrs[attr])
			}
		}
	}
	if n := len(regexp.MustCompile(`<tr class="lease" data-holder="admin"`).FindAllString(dom, -1)); n != 2 {
		t.Errorf("the page shows %d leases held by admin, want 2 (the third is bound)", n)
	}
	if !regexp.MustCompile(`class="failure" data-code="no_fit"`).MatchString(dom) {
		t.Errorf("the no-fit placement is not among the failures shown")
	}

	shot := os.Getenv(screenshotEnv)
	if shot == "" {
		shot = filepath.Join(t.TempDir(), "status-page.png")
	} else if abs, err := filepath.Abs(shot); err == nil {
		shot = abs
	}
	chromium(t, "--screenshot="+shot, "--hide-scrollbars", page)
	data, err := os.ReadFile(shot)
	if err != nil || len(data) < 8 || string(data[1:4]) != "PNG" {
		t.Fatalf("no PNG screenshot at %s (%v)", shot, err)
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(data))
}
