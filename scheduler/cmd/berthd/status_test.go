package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
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

var hostRow = regexp.MustCompile(`<tr class="host" data-host="([^"]+)" data-cpu-used="(\d+)" data-cpu-capacity="(\d+)" data-memory-used="(\d+)" data-memory-capacity="(\d+)" data-containers="(\d+)" data-state="([a-z]+)"`)

// The status page, driven in headless Chromium: with the token in the URL
// it loads its live part by itself; the hosts, their numbers and states,
// the leases and the failure it shows are the API's. A screenshot is taken.
func TestStatusPage(t *testing.T) {
	env := testenv.Require(t)
	cleanPool(t, env, "page1")
	b := start(t, http.DefaultClient, []string{"BERTHD_ADMIN_TOKEN=" + adminToken}, "--data-dir", t.TempDir(), "--engines", enginesFile(t, env))
	b.waitReady(t)
	spec := testPool(env, "page1", 8, 61800)
	cordoned := env.Engines[len(env.Engines)-1].Name
	for name, h := range spec.Hosts {
		h.MaxContainers = 8
		h.Cordoned = name == cordoned
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

	page := b.url + "/#token=" + adminToken
	dom := string(chromium(t, "--dump-dom", page))
	usage := decodeAs[backend.PoolUsage](t, b.do("GET", api.PoolUsagePath("page1"), adminToken, "", nil), http.StatusOK)
	rows := hostRow.FindAllStringSubmatch(dom, -1)
	if len(rows) != len(usage.Hosts) {
		t.Fatalf("the page shows %d hosts, the API %d; page: %s", len(rows), len(usage.Hosts), dom)
	}
	shown := map[string][]string{}
	for _, r := range rows {
		shown[r[1]] = r[2:]
	}
	for _, h := range usage.Hosts {
		row, ok := shown[h.Name]
		if !ok {
			t.Errorf("host %s is not on the page", h.Name)
			continue
		}
		want := []string{strconv.FormatInt(h.Reserved.MilliCPU, 10), strconv.FormatInt(h.Capacity.MilliCPU, 10),
			strconv.FormatInt(h.Reserved.MemoryBytes, 10), strconv.FormatInt(h.Capacity.MemoryBytes, 10), strconv.Itoa(h.Containers)}
		for i, w := range want {
			if row[i] != w {
				t.Errorf("host %s: the page shows %v, the API %v (cpu used, cpu capacity, memory used, memory capacity, containers)", h.Name, row[:5], want)
				break
			}
		}
		wantState := map[bool]string{true: "cordoned", false: "healthy"}[h.Name == cordoned]
		if row[5] != wantState {
			t.Errorf("host %s shown %s, want %s", h.Name, row[5], wantState)
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
