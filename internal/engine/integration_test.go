package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
)

// Integration tests run against a real engine given by the test harness
// (internal/testenv): source /tmp/berth-engines/engines.env first.
const endpointVariable = "BERTH_TEST_ENDPOINT_node1"

// requireEnv returns the variable's value. When it is missing the test
// fails under CI and is skipped, saying why, in local development only.
func requireEnv(t *testing.T, name string) string {
	t.Helper()
	value := os.Getenv(name)
	if value == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: integration tests need the test engines (source /tmp/berth-engines/engines.env after internal/testenv/engines.sh up)", name)
		}
		t.Skipf("%s is not set: skipping engine integration test in local development only (CI fails instead)", name)
	}
	return value
}

func testEngine(t *testing.T) *Engine {
	t.Helper()
	return engineAt(t, Config{Name: "node1", Endpoint: requireEnv(t, endpointVariable)})
}

func engineAt(t *testing.T, cfg Config) *Engine {
	t.Helper()
	set, err := NewSet([]Config{cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Close() })
	e, _ := set.Get(cfg.Name)
	return e
}

func testImage() string {
	if image := os.Getenv("BERTH_TEST_IMAGE"); image != "" {
		return image
	}
	return "berth-test/app:1"
}

// testPool returns a pool name no other test run uses, and removes every
// container and record of that pool when the test ends.
func testPool(t *testing.T, e *Engine) string {
	t.Helper()
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		t.Fatal(err)
	}
	pool := "itest-" + hex.EncodeToString(suffix)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		containers, err := e.ListContainers(ctx, pool)
		if err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, c := range containers {
			if err := e.Remove(ctx, c.ID); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		if err := e.DeletePoolRecord(ctx, pool); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return pool
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestIntegrationInfo(t *testing.T) {
	e := testEngine(t)
	info, err := e.Info(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.NCPU < 1 || info.MemTotal < 1<<20 || info.ServerVersion == "" {
		t.Fatalf("implausible info %+v", info)
	}
	if !regexp.MustCompile(`^1\.\d+$`).MatchString(info.APIVersion) {
		t.Fatalf("APIVersion %q is not a negotiated API version", info.APIVersion)
	}
	t.Logf("engine %s, API %s, %d CPUs, %d bytes", info.ServerVersion, info.APIVersion, info.NCPU, info.MemTotal)
}

func TestIntegrationInfoOverTLS(t *testing.T) {
	endpoint := requireEnv(t, "BERTH_TEST_TLS_ENDPOINT")
	read := func(variable string) string {
		text, err := os.ReadFile(requireEnv(t, variable))
		if err != nil {
			t.Fatal(err)
		}
		return string(text)
	}
	material := TLSConfig{CAPEM: read("BERTH_TEST_TLS_CA"), CertPEM: read("BERTH_TEST_TLS_CERT"), KeyPEM: read("BERTH_TEST_TLS_KEY")}
	info, err := engineAt(t, Config{Name: "tls", Endpoint: endpoint, TLS: &material}).Info(testContext(t))
	if err != nil || info.NCPU < 1 || info.APIVersion == "" {
		t.Fatalf("Info over TLS: %+v, %v", info, err)
	}

	stranger := newTestPKI(t)
	material.CAPEM = stranger.caPEM
	_, err = engineAt(t, Config{Name: "tls", Endpoint: endpoint, TLS: &material}).Info(testContext(t))
	if want := fmt.Sprintf("engine tls (%s) unreachable: failed TLS verification ", endpoint); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("engine certificate from an unknown CA: %v, want prefix %q", err, want)
	}
}

// TestIntegrationOverSSH replaces ssh with a script that runs the remote
// command (docker system dial-stdio) here, against the test engine: the
// whole ssh path is exercised except ssh itself.
func TestIntegrationOverSSH(t *testing.T) {
	endpoint := requireEnv(t, endpointVariable)
	if _, err := exec.LookPath("docker"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the docker CLI is needed to stand in for the remote end of ssh")
		}
		t.Skip("the docker CLI is not installed: skipping in local development only (CI fails instead)")
	}
	dir := t.TempDir()
	script := fmt.Sprintf("#!/bin/sh\nfor last; do :; done\nDOCKER_HOST=%s exec sh -c \"$last\"\n", endpoint)
	if err := os.WriteFile(filepath.Join(dir, "ssh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))

	e := engineAt(t, Config{Name: "node3", Endpoint: "ssh://ops@node3.invalid"})
	ctx := testContext(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 { // concurrent requests share the client, over several ssh pipes
		wg.Add(1)
		go func() {
			defer wg.Done()
			if info, err := e.Info(ctx); err != nil || info.NCPU < 1 {
				errs <- fmt.Errorf("Info over ssh: %+v, %w", info, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if _, err := e.ListContainers(ctx, ""); err != nil {
		t.Fatal(err)
	}
}

func TestIntegrationPoolRecords(t *testing.T) {
	e := testEngine(t)
	ctx := testContext(t)
	pool, other := testPool(t, e), testPool(t, e)

	if rec, err := e.ReadPoolRecord(ctx, pool); err != nil || rec != nil {
		t.Fatalf("absent record: %v, %v", rec, err)
	}
	first := PoolRecord{Name: pool, Strategy: "spread", Revision: 1, Hosts: map[string]PoolRecordHost{
		"node1": {Labels: map[string]string{"zone": "a"}, MilliCPU: 2000, MemoryBytes: 1 << 30, MaxContainers: 10},
	}}
	if err := e.WritePoolRecord(ctx, first); err != nil {
		t.Fatal(err)
	}
	assertRecord(t, e, pool, first)

	second := first
	second.Strategy, second.Revision = "binpack", 2
	second.Hosts = map[string]PoolRecordHost{"node1": {Labels: map[string]string{"zone": "b"}, PortMin: 30000, PortMax: 30100}}
	if err := e.WritePoolRecord(ctx, second); err != nil {
		t.Fatal(err)
	}
	assertRecord(t, e, pool, second)
	assertRecordVolumes(t, e, pool, 1)

	otherRecord := PoolRecord{Name: other, Strategy: "random", Hosts: map[string]PoolRecordHost{"node1": {}}}
	if err := e.WritePoolRecord(ctx, otherRecord); err != nil {
		t.Fatal(err)
	}
	assertRecord(t, e, other, otherRecord) // pools' records do not mix
	assertRecord(t, e, pool, second)

	if err := e.DeletePoolRecord(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if rec, err := e.ReadPoolRecord(ctx, pool); err != nil || rec != nil {
		t.Fatalf("after delete: %v, %v", rec, err)
	}
	if err := e.DeletePoolRecord(ctx, pool); err != nil {
		t.Fatalf("deleting an absent record: %v", err)
	}
	assertRecord(t, e, other, otherRecord)
}

func TestIntegrationPoolRecordConcurrentWriters(t *testing.T) {
	e := testEngine(t)
	ctx := testContext(t)
	pool := testPool(t, e)
	const writers, writes = 4, 5
	written := map[string]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, writers*writes)
	for w := range writers {
		for i := range writes {
			written[fmt.Sprintf("w%d-%d", w, i)] = true
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range writes {
				rec := PoolRecord{Name: pool, Strategy: fmt.Sprintf("w%d-%d", w, i), Hosts: map[string]PoolRecordHost{}}
				if err := e.WritePoolRecord(ctx, rec); err != nil {
					errs <- err
				}
				// Readers never see the pool without a record.
				if rec, err := e.ReadPoolRecord(ctx, pool); err != nil || rec == nil {
					errs <- fmt.Errorf("read during writes: %v, %w", rec, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	rec, err := e.ReadPoolRecord(ctx, pool)
	if err != nil || rec == nil || !written[rec.Strategy] {
		t.Fatalf("after concurrent writes: %+v, %v", rec, err)
	}
	assertRecordVolumes(t, e, pool, 1)
}

func assertRecord(t *testing.T, e *Engine, pool string, want PoolRecord) {
	t.Helper()
	got, err := e.ReadPoolRecord(testContext(t), pool)
	if err != nil {
		t.Fatal(err)
	}
	if got == nil || !reflect.DeepEqual(*got, want) {
		t.Fatalf("record of %s = %+v, want %+v", pool, got, want)
	}
}

func assertRecordVolumes(t *testing.T, e *Engine, pool string, want int) {
	t.Helper()
	stored, err := e.listRecordVolumes(testContext(t), pool)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != want {
		t.Fatalf("pool %s has %d record volumes, want %d: %+v", pool, len(stored), want, stored)
	}
}

func TestIntegrationContainerLifecycle(t *testing.T) {
	e := testEngine(t)
	ctx := testContext(t)
	pool := testPool(t, e)

	start := time.Now()
	if err := e.EnsureImage(ctx, testImage(), nil); err != nil {
		t.Fatalf("EnsureImage of a local image (no registry is reachable, so a pull would fail): %v", err)
	}
	t.Logf("EnsureImage of a local image took %v", time.Since(start))

	spec := ContainerSpec{
		Pool: pool, Name: "web-0", ReservationID: "res-0", Image: testImage(),
		Command:  []string{"serve"}, // the test app ignores it; inspect must report it
		Env:      map[string]string{"MESSAGE": "hello", "EMPTY": ""},
		MilliCPU: 250, MemoryBytes: 64 << 20,
		Ports:       []PortBinding{{Internal: 8080, External: 30001, Protocol: "tcp"}, {Internal: 53, External: 30002, Protocol: "udp"}},
		SpreadGroup: "web", MaxPerHost: 4, Constraints: []string{"zone != c"},
		Restart:     "unless-stopped",
		Healthcheck: &Healthcheck{Test: []string{"CMD", "/app", "healthcheck"}, Interval: 200 * time.Millisecond, Timeout: 2 * time.Second, Retries: 3},
	}
	id, err := e.CreateContainer(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}

	inspected, err := e.InspectContainer(ctx, id)
	if err != nil || inspected == nil {
		t.Fatalf("inspect: %v, %v", inspected, err)
	}
	if inspected.Created.Nanosecond() == 0 || time.Since(inspected.Created) > time.Minute {
		t.Errorf("inspect Created %v is not an exact recent time", inspected.Created)
	}
	if !strings.HasPrefix(inspected.ImageID, "sha256:") {
		t.Errorf("inspect ImageID %q is not the image's digest", inspected.ImageID)
	}
	want := Container{
		ID: id, Pool: pool, Name: "web-0", ReservationID: "res-0", Image: testImage(), ImageID: inspected.ImageID,
		MilliCPU: 250, MemoryBytes: 64 << 20, Ports: spec.Ports, SpreadGroup: "web", MaxPerHost: 4,
		Constraints: []string{"zone != c"}, Restart: "unless-stopped", Command: []string{"serve"},
		Env: map[string]string{"MESSAGE": "hello", "EMPTY": ""}, Created: inspected.Created,
		State: "created", IPAddress: inspected.IPAddress, Health: inspected.Health,
		Healthcheck: spec.Healthcheck,
	}
	if !reflect.DeepEqual(*inspected, want) {
		t.Fatalf("inspect:\n%+v\nwant\n%+v", *inspected, want)
	}

	listed := listOne(t, e, pool, id)
	if !listed.Created.Equal(inspected.Created.Truncate(time.Second)) {
		t.Errorf("list Created %v, inspect %v: want the same second", listed.Created, inspected.Created)
	}
	wantListed := want
	wantListed.Restart, wantListed.Command, wantListed.Env, wantListed.Healthcheck = "", nil, nil, nil
	wantListed.Created, wantListed.Health = listed.Created, ""
	wantListed.IPAddress = listed.IPAddress
	if !reflect.DeepEqual(listed, wantListed) {
		t.Fatalf("list:\n%+v\nwant\n%+v", listed, wantListed)
	}

	if err := e.StartContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	running, err := e.WaitRunning(ctx, id, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("running and healthy after %v", time.Since(start))
	if !running.Running || running.State != "running" || running.Health != "healthy" {
		t.Fatalf("after WaitRunning: %+v, %v", running, err)
	}
	if listed := listOne(t, e, pool, id); !listed.Running || listed.Health != "healthy" {
		t.Fatalf("list after start: %+v", listed)
	}

	// In-place updates, up then down, with limits set apart and back: inspect
	// reports the reservation, limits and restart policy in force while the
	// labels keep the values the container was created with.
	for _, u := range []Update{
		{MilliCPU: 500, MemoryBytes: 128 << 20, Limits: Limits{MilliCPU: 1500, MemoryBytes: 256 << 20}, Restart: "always"},
		{MilliCPU: 700, MemoryBytes: 300 << 20, Restart: "on-failure"},
		{MilliCPU: 100, MemoryBytes: 32 << 20},
	} {
		if err := e.Update(ctx, id, u); err != nil {
			t.Fatal(err)
		}
		updated, err := e.InspectContainer(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		restart := u.Restart
		if restart == "" {
			restart = "on-failure" // kept from the update before
		}
		if updated.MilliCPU != u.MilliCPU || updated.MemoryBytes != u.MemoryBytes || updated.Limits != u.Limits || updated.Restart != restart {
			t.Fatalf("after update to %+v: inspect says %d mCPU, %d bytes, limits %+v, restart %q",
				u, updated.MilliCPU, updated.MemoryBytes, updated.Limits, updated.Restart)
		}
	}
	if listed := listOne(t, e, pool, id); listed.MilliCPU != 250 || listed.MemoryBytes != 64<<20 {
		t.Fatalf("labels changed by update: %+v", listed)
	}

	// The same name in the same pool is refused with a typed error.
	if _, err := e.CreateContainer(ctx, spec); !errors.Is(err, ErrNameInUse) {
		t.Fatalf("second create with the same name: %v, want ErrNameInUse", err)
	}

	start = time.Now()
	if err := e.StopAndRemove(ctx, id, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("stop and remove took %v", time.Since(start))
	if gone, err := e.InspectContainer(ctx, id); err != nil || gone != nil {
		t.Fatalf("after StopAndRemove: %+v, %v", gone, err)
	}
	if err := e.StopAndRemove(ctx, id, time.Second); err != nil {
		t.Fatalf("StopAndRemove of a removed container: %v", err)
	}
	if err := e.Remove(ctx, id); err != nil {
		t.Fatalf("Remove of a removed container: %v", err)
	}
}

func listOne(t *testing.T, e *Engine, pool, id string) Container {
	t.Helper()
	containers, err := e.ListContainers(testContext(t), pool)
	if err != nil {
		t.Fatal(err)
	}
	if len(containers) != 1 || containers[0].ID != id {
		t.Fatalf("pool %s lists %+v, want only %s", pool, containers, id)
	}
	return containers[0]
}

func TestIntegrationListContainersSelectsByPool(t *testing.T) {
	e := testEngine(t)
	ctx := testContext(t)
	poolA, poolB := testPool(t, e), testPool(t, e)
	ids := map[string]string{}
	for _, p := range []struct{ pool, name string }{{poolA, "a-0"}, {poolA, "a-1"}, {poolB, "b-0"}} {
		id, err := e.CreateContainer(ctx, ContainerSpec{Pool: p.pool, Name: p.name, Image: testImage(), MilliCPU: 100, MemoryBytes: 16 << 20})
		if err != nil {
			t.Fatal(err)
		}
		ids[id] = p.pool + "/" + p.name
	}
	// A container that is not Berth's is never listed.
	foreign, err := e.api.ContainerCreate(ctx, &container.Config{Image: testImage()}, nil, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Remove(context.Background(), foreign.ID) })

	names := func(pool string) []string {
		containers, err := e.ListContainers(ctx, pool)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range containers {
			if c.Pool == poolA || c.Pool == poolB {
				got = append(got, c.Pool+"/"+c.Name)
			}
			if c.ID == foreign.ID {
				t.Errorf("foreign container listed in pool %q", pool)
			}
		}
		return got
	}
	if got := names(poolA); len(got) != 2 || !strings.HasPrefix(got[0], poolA) || !strings.HasPrefix(got[1], poolA) {
		t.Errorf("pool A lists %v", got)
	}
	if got := names(poolB); !reflect.DeepEqual(got, []string{poolB + "/b-0"}) {
		t.Errorf("pool B lists %v", got)
	}
	if got := names(""); len(got) != 3 {
		t.Errorf("all pools list %v, want 3 of ours", got)
	}
}

func TestIntegrationWaitRunningFailsFastOnExit(t *testing.T) {
	e := testEngine(t)
	ctx := testContext(t)
	pool := testPool(t, e)
	// The test app exits 1 when it cannot listen on $PORT.
	id, err := e.CreateContainer(ctx, ContainerSpec{Pool: pool, Name: "crash", Image: testImage(), Env: map[string]string{"PORT": "invalid"}, MemoryBytes: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := e.InspectContainer(ctx, id); err != nil || c.Command != nil || c.Restart != "no" {
		t.Fatalf("inspect: %+v, %v", c, err)
	}
	if err := e.StartContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = e.WaitRunning(ctx, id, false)
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("WaitRunning succeeded for a container that exits 1")
	}
	for _, want := range []string{"engine node1: container " + pool + ".crash", "exited with code 1", "last log lines:\nlisten tcp", "unknown port"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	t.Logf("failed after %v: %v", elapsed, err)
}

func TestIntegrationWaitRunningFailsWhenUnhealthy(t *testing.T) {
	e := testEngine(t)
	ctx := testContext(t)
	pool := testPool(t, e)
	id, err := e.CreateContainer(ctx, ContainerSpec{
		Pool: pool, Name: "sick", Image: testImage(), MemoryBytes: 16 << 20,
		Healthcheck: &Healthcheck{Test: []string{"CMD", "/no-such-probe"}, Interval: 100 * time.Millisecond, Timeout: time.Second, Retries: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.StartContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	_, err = e.WaitRunning(ctx, id, true)
	if err == nil || !strings.Contains(err.Error(), "is unhealthy; last check: exit code") || !strings.Contains(err.Error(), "no-such-probe") {
		t.Fatalf("WaitRunning on an unhealthy container: %v", err)
	}
	// Without asking for health, running is enough.
	if running, err := e.WaitRunning(ctx, id, false); err != nil || !running.Running {
		t.Fatalf("WaitRunning without health: %+v, %v", running, err)
	}
}

func TestIntegrationWaitRunningHonoursContext(t *testing.T) {
	e := testEngine(t)
	pool := testPool(t, e)
	id, err := e.CreateContainer(testContext(t), ContainerSpec{Pool: pool, Name: "idle", Image: testImage()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err = e.WaitRunning(ctx, id, false) // never started
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "last state: created") {
		t.Fatalf("WaitRunning on a container never started: %v", err)
	}
}

func TestIntegrationEnsureImagePullFailuresAreBounded(t *testing.T) {
	e := testEngine(t)
	e.pull = retryPolicy{attempts: 3, first: 10 * time.Millisecond, most: 20 * time.Millisecond}
	// Port 1 on loopback refuses at once: nothing leaves the machine.
	missing := "127.0.0.1:1/berth/missing:1"
	err := e.EnsureImage(testContext(t), missing, &RegistryAuth{ServerAddress: "127.0.0.1:1", Username: "u", Password: "p"})
	if err == nil || !strings.Contains(err.Error(), "pull image "+missing+" (attempt ") {
		t.Fatalf("EnsureImage of an unreachable image: %v", err)
	}
	t.Logf("%v", err)

	e.pull = retryPolicy{attempts: 100, first: time.Second, most: time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = e.EnsureImage(ctx, missing, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("EnsureImage did not stop with its context: %v after %v", err, time.Since(start))
	}
}

// TestIntegrationParallelLifecycles drives one shared client the way
// Terraform's parallel walk does: ten workers creating, starting, waiting
// for and removing containers at once.
func TestIntegrationParallelLifecycles(t *testing.T) {
	e := testEngine(t)
	ctx := testContext(t)
	pool := testPool(t, e)
	const workers, containers = 10, 30
	names := make(chan string, containers)
	for i := range containers {
		names <- fmt.Sprintf("p-%d", i)
	}
	close(names)
	errs := make(chan error, containers)
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range names {
				id, err := e.CreateContainer(ctx, ContainerSpec{Pool: pool, Name: name, Image: testImage(), MilliCPU: 10, MemoryBytes: 16 << 20})
				if err == nil {
					err = e.StartContainer(ctx, id)
				}
				if err == nil {
					_, err = e.WaitRunning(ctx, id, false)
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	created := time.Since(start)
	listed, err := e.ListContainers(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	running := 0
	for _, c := range listed {
		if c.Running {
			running++
		}
	}
	if running != containers {
		t.Fatalf("%d of %d containers running", running, containers)
	}
	t.Logf("%d containers created, started and running with %d workers in %v", containers, workers, created)
}

// TestIntegrationForgetMarks: one list finds a container's resize markers
// and replace marks, and ForgetMarks removes those and nothing else.
func TestIntegrationForgetMarks(t *testing.T) {
	e := testEngine(t)
	ctx := testContext(t)
	pool := testPool(t, e)
	const gone, kept = "aaaaaaaaaaaa0001", "aaaaaaaaaaaa0002"
	for _, id := range []string{gone, kept} {
		if _, err := e.WriteResizeMarker(ctx, ResizeMarker{Pool: pool, Name: "web-" + id, ContainerID: id, MilliCPU: 500, MemoryBytes: 1 << 20, Sequence: 1}); err != nil {
			t.Fatal(err)
		}
		if err := e.MarkReplaced(ctx, pool, "web-"+id, id, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = e.ForgetMarks(context.Background(), kept) })
	if err := e.ForgetMarks(ctx, gone); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]int{gone: 0, kept: 1} {
		markers, err := e.ListResizeMarkers(ctx, pool, id)
		if err != nil || len(markers) != want {
			t.Errorf("resize markers of %s: %v (%v), want %d", id, markers, err, want)
		}
		marks, err := e.ReplaceMarks(ctx, pool, id)
		if err != nil || len(marks) != want {
			t.Errorf("replace marks of %s: %v (%v), want %d", id, marks, err, want)
		}
	}
}
