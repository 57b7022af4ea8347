package backend

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/internal/testenv"
)

// Failure tests use pools named bk-fail-* and host ports 39000-39999.

// A request Docker refuses is the container's own problem: its create fails
// once, naming what was refused, and every host stays healthy.
func TestEmbeddedBadRequestFailsThatContainerOnly(t *testing.T) {
	env := testenv.Require(t)
	b := newProcess(t, env)
	// 100 CPUs per host: far above the engines' NCPU, so that Docker, not
	// the scheduler, is the one to refuse a big CPU request.
	spec := testPool(t, env, b, "bk-fail-request", 400, 39000)
	ctx := context.Background()

	cases := []struct {
		name   string
		change func(*ContainerSpec)
		want   string
	}{
		{"image that does not exist", func(s *ContainerSpec) { s.Image = "berth-test/missing:1" }, "refused the image berth-test/missing:1"},
		{"memory under Docker's minimum", func(s *ContainerSpec) { s.Resources.MemoryBytes = 1 << 20 }, "refused the memory setting"},
		{"cpu above the engine's", func(s *ContainerSpec) { s.Resources.MilliCPU = 64000 }, "refused the cpu setting"},
		{"healthcheck interval under 1ms", func(s *ContainerSpec) {
			s.Healthcheck = &engine.Healthcheck{Test: []string{"CMD", "/app", "healthcheck"}, Interval: 500 * time.Microsecond}
		}, "refused the healthcheck setting"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := webSpec(env, spec.Name, "bad")
			bad.Ports = nil
			tc.change(&bad)
			_, err := b.CreateContainer(ctx, bad)
			if err == nil {
				t.Fatal("the create succeeded")
			}
			text := err.Error()
			t.Log(text)
			if !strings.Contains(text, tc.want) || strings.Contains(text, "unhealthy") || strings.Count(text, "refused") != 1 {
				t.Errorf("error %q: want it to say %q once, and no host unhealthy", text, tc.want)
			}
			for _, host := range keys(spec.Hosts) {
				if h := hostOf(mustPool(t, b, spec.Name), host); !h.Healthy {
					t.Errorf("%s was marked unhealthy by a bad request", host)
				}
			}
		})
	}
	// Every host still takes containers, and nothing of the bad ones is left.
	for i := range len(spec.Hosts) {
		if _, err := b.CreateContainer(ctx, webSpec(env, spec.Name, "good-"+string(rune('a'+i)))); err != nil {
			t.Fatalf("a good create after the bad ones: %v", err)
		}
	}
	for host, containers := range observedUsage(t, b, spec.Name, keys(spec.Hosts)) {
		for _, c := range containers {
			if !strings.HasPrefix(c.Name, "good-") {
				t.Errorf("%s left on %s", c.Name, host)
			}
		}
	}
}

// A container whose Berth labels do not parse is skipped with a warning;
// its engine stays listable and healthy, and takes new containers.
func TestEmbeddedSkipsContainerWithMalformedLabels(t *testing.T) {
	env := testenv.Require(t)
	b := newProcess(t, env)
	spec := testPool(t, env, b, "bk-fail-labels", 4, 39100)
	ctx := context.Background()
	node1 := env.Engines[0]
	api, err := client.NewClientWithOpts(client.WithHost(node1.Socket), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = api.Close() })
	junk, err := api.ContainerCreate(ctx, &container.Config{Image: env.Image, Labels: map[string]string{
		engine.LabelPool: spec.Name, engine.LabelName: "junk", engine.LabelCPU: "lots",
	}}, nil, nil, nil, spec.Name+".junk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = api.ContainerRemove(ctx, junk.ID, container.RemoveOptions{Force: true}) })

	fresh := newProcess(t, env) // loads the pool, junk included
	pinned := webSpec(env, spec.Name, "web-0")
	pinned.Host = node1.Name
	planned, err := fresh.PlanContainer(ctx, pinned)
	if err != nil {
		t.Fatalf("planning onto the engine with the malformed container: %v", err)
	}
	wantWarning := func(what string, warnings []string) {
		t.Helper()
		if len(warnings) != 1 || !strings.Contains(warnings[0], "junk") || !strings.Contains(warnings[0], engine.LabelCPU) {
			t.Errorf("%s: warnings %q, want one naming the junk container and its label", what, warnings)
		}
	}
	wantWarning("plan", planned.Warnings)
	created, err := fresh.CreateContainer(ctx, pinned)
	if err != nil {
		t.Fatalf("creating on the engine with the malformed container: %v", err)
	}
	read, err := newProcess(t, env).ReadContainer(ctx, created.Ref)
	if err != nil || read == nil {
		t.Fatalf("reading the new container: %v, %v", read, err)
	}
	wantWarning("read", read.Warnings)
}

// A fixed external port held by a program outside the pool fails at once
// with a message that says so, after one try per host (all local engines
// publish on the same 127.0.0.1, so every host has it taken), and a pinned
// container tries only its host.
func TestEmbeddedPortHeldOutsideThePool(t *testing.T) {
	env := testenv.Require(t)
	b := newProcess(t, env)
	spec := testPool(t, env, b, "bk-fail-port", 4, 39200)
	ctx := context.Background()
	const port = 39590
	listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = listener.Close() })

	web := webSpec(env, spec.Name, "web-fixed")
	web.Ports = []PortSpec{{Internal: 8080, External: port}}
	_, err = b.CreateContainer(ctx, web)
	if err == nil {
		t.Fatal("the create succeeded on a port another program holds")
	}
	t.Log(err)
	for _, host := range keys(spec.Hosts) {
		if want := fmt.Sprintf("port %d on %s is in use by something Berth does not manage", port, host); !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q", want)
		}
	}
	if strings.Contains(err.Error(), "gave up after") {
		t.Errorf("the create went on placing after every host said the port is taken")
	}

	pinned := web
	pinned.Name, pinned.Host = "web-pinned", env.Engines[0].Name
	_, err = b.CreateContainer(ctx, pinned)
	want := fmt.Sprintf("port %d on %s is in use by something Berth does not manage", port, pinned.Host)
	if err == nil || !strings.Contains(err.Error(), want) || strings.Count(err.Error(), "in use by something") != 1 {
		t.Errorf("pinned create: %v, want one failure saying %q", err, want)
	}
	for host, containers := range observedUsage(t, b, spec.Name, keys(spec.Hosts)) {
		if len(containers) > 0 {
			t.Errorf("%d container(s) left on %s", len(containers), host)
		}
	}
}

// What an interrupted create leaves (a container made, never started, in
// no state) does not block the next apply: the plan does not count it, and
// the create removes it and places again, without "already exists".
func TestEmbeddedInterruptedCreateDoesNotBlockTheName(t *testing.T) {
	env := testenv.Require(t)
	b := newProcess(t, env)
	spec := testPool(t, env, b, "bk-fail-interrupted", 4, 39600)
	ctx := context.Background()
	web := webSpec(env, spec.Name, "web-0")
	eng, err := b.engines.Get(env.Engines[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := eng.CreateContainer(ctx, engine.ContainerSpec{
		Pool: spec.Name, Name: web.Name, ReservationID: "lost-answer", Image: env.Image, MilliCPU: 250, MemoryBytes: 16 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}

	next := newProcess(t, env) // the next apply: its plan and create
	if _, err := next.PlanContainer(ctx, web); err != nil {
		t.Fatalf("planning past the leftover of an interrupted create: %v", err)
	}
	created, err := next.CreateContainer(ctx, web)
	if err != nil {
		t.Fatalf("creating past the leftover of an interrupted create: %v", err)
	}
	if created.Ref.ContainerID == orphan || !created.Running {
		t.Errorf("created %+v, want a new running container", created.Ref)
	}
	if gone, err := eng.InspectContainer(ctx, orphan); err != nil || gone != nil {
		t.Errorf("the leftover is still there (%v)", err)
	}

	// A real container of that name (started) is never taken for one.
	other := newProcess(t, env)
	if _, err := other.PlanContainer(ctx, web); !errors.Is(err, ErrDuplicateName) {
		t.Errorf("planning a second web-0 beside a running one: %v, want a duplicate name", err)
	}
}

// Two workspaces declaring the same pool and name, creating it at the same
// moment on one host: the create whose container has not started yet loses
// it to the other, which takes it for the leftover of an interrupted
// create; the loser says so instead of "No such container".
func TestEmbeddedSameNameFromAnotherApplyExplainsTheLoss(t *testing.T) {
	ctx := context.Background()
	env := testenv.Require(t)
	first := newProcess(t, env)
	web := webSpec(env, testPool(t, env, first, "bk-fail-same-name", 4, 39300).Name, "web-0")
	web.Host = env.Engines[0].Name // both creates on one host: one Docker name

	// The first create stops after its container is made, before its start.
	ps, err := first.pool(ctx, web.Pool)
	if err != nil {
		t.Fatal(err)
	}
	req, err := ps.request(web)
	if err != nil {
		t.Fatal(err)
	}
	res, err := first.reserve(ctx, ps, req, web.Pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := ps.names.create(res.ID, web); err != nil {
		t.Fatal(err)
	}
	made, err := first.createOn(ctx, ps, web, res)
	if err != nil || made == "" {
		t.Fatalf("the first create's container: %q, %v", made, err)
	}

	second := newProcess(t, env)
	created, err := second.CreateContainer(ctx, web)
	if err != nil {
		t.Fatalf("the second create: %v", err)
	}
	if created.Ref.ContainerID == made {
		t.Fatalf("the second create took over the first one's container %s", shortID(made))
	}

	_, err = first.start(ctx, ps, web, res, made)
	want := "another apply is probably creating bk-fail-same-name.web-0 at the same moment"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("the first create's start: %v, want an error saying %q", err, want)
	}
}

// Two processes creating the same pool/name at once on different hosts:
// one container stays, the later one gives way with "name taken".
func TestEmbeddedNameUniqueAcrossProcesses(t *testing.T) {
	env := testenv.Require(t)
	first, second := newProcess(t, env), newProcess(t, env)
	spec := testPool(t, env, first, "bk-fail-names", 4, 39700)
	ctx := context.Background()
	for round := range 3 {
		name := fmt.Sprintf("web-%d", round)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, b := range []*Embedded{first, second} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				web := webSpec(env, spec.Name, name)
				web.Ports = nil
				web.Host = env.Engines[i].Name
				_, errs[i] = b.CreateContainer(ctx, web)
			}()
		}
		wg.Wait()
		stayed := 0
		for host, containers := range observedUsage(t, first, spec.Name, keys(spec.Hosts)) {
			for _, c := range containers {
				if c.Name == name {
					stayed++
					t.Logf("round %d: %s stayed on %s", round, name, host)
				}
			}
		}
		failed := 0
		for _, err := range errs {
			if err != nil {
				failed++
				if !errors.Is(err, ErrDuplicateName) || !strings.Contains(err.Error(), "name taken") {
					t.Errorf("round %d: the later create failed with %v, want name taken", round, err)
				}
			}
		}
		if stayed != 1 || failed != 1 {
			t.Errorf("round %d: %d container(s) named %s stayed and %d create(s) failed, want 1 and 1", round, stayed, name, failed)
		}
	}
}

// Several processes race for one small host, round after round: never more
// than its capacity stays, whatever order the creates finish in. Fewer
// than capacity staying is what extra yields cost; the test logs it.
func TestEmbeddedRacingProcessesOnOneSmallHost(t *testing.T) {
	env := testenv.Require(t)
	const processes, perProcess, slots, rounds = 3, 3, 4, 4
	procs := make([]*Embedded, processes)
	for i := range procs {
		procs[i] = newProcess(t, env)
	}
	host := env.Engines[0].Name
	spec := PoolSpec{Name: "bk-fail-stress", Strategy: "spread", Hosts: map[string]PoolHostSpec{
		host: {MilliCPU: slots * 250, MemoryBytes: 1 << 30, PortMin: 39800, PortMax: 39899},
	}}
	ctx := context.Background()
	if _, err := procs[0].ApplyPool(ctx, spec); err != nil {
		t.Fatal(err)
	}
	eng, err := procs[0].engines.Get(host)
	if err != nil {
		t.Fatal(err)
	}
	removeAll := func() {
		listed, _ := eng.ListContainers(ctx, spec.Name)
		for _, c := range listed {
			_ = eng.Remove(ctx, c.ID)
		}
	}
	t.Cleanup(func() {
		removeAll()
		_ = procs[0].DeletePool(ctx, spec.Name)
	})
	short := 0
	for round := range rounds {
		fresh := make([]*Embedded, processes) // each round is a new apply: new processes
		for i := range fresh {
			fresh[i] = newProcess(t, env)
		}
		var wg sync.WaitGroup
		for p, b := range fresh {
			for i := range perProcess {
				wg.Add(1)
				go func() {
					defer wg.Done()
					web := webSpec(env, spec.Name, fmt.Sprintf("r%d-p%d-%d", round, p, i))
					_, _ = b.CreateContainer(ctx, web) // losers fail: no room
				}()
			}
		}
		wg.Wait()
		stayed := observedUsage(t, fresh[0], spec.Name, []string{host})[host]
		var cpu int64
		for _, c := range stayed {
			cpu += c.MilliCPU
		}
		if cpu > slots*250 || len(stayed) > slots {
			t.Errorf("round %d: %s overcommitted: %d containers, %d millicores of %d", round, host, len(stayed), cpu, slots*250)
		}
		short += slots - len(stayed)
		t.Logf("round %d: %d of %d slots taken by %d racing creates", round, len(stayed), slots, processes*perProcess)
		removeAll()
	}
	t.Logf("slots left empty by extra yields over %d rounds: %d of %d", rounds, short, rounds*slots)
}

func mustPool(t *testing.T, b *Embedded, name string) *poolState {
	t.Helper()
	ps, err := b.pool(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}
