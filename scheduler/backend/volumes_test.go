package backend

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
	"github.com/berthsh/terraform-provider-berth/internal/testenv"
)

// TestEmbeddedVolumesDecidePlacement: volumes spread and hold declared
// disk; a container that mounts one lands on its host; deleting a mounted
// volume is refused naming the container, and deleting the pool naming
// its volumes; a second process rebuilds the
// volume's disk from its labels.
func TestEmbeddedVolumesDecidePlacement(t *testing.T) {
	env := testenv.Require(t)
	b := newProcess(t, env)
	spec := PoolSpec{Name: "bk-volumes", Strategy: "spread", Hosts: map[string]PoolHostSpec{}}
	for i, e := range env.Engines {
		spec.Hosts[e.Name] = PoolHostSpec{MilliCPU: 1000, MemoryBytes: 1 << 30, DiskBytes: 1 << 30, PortMin: 36800 + i*100, PortMax: 36899 + i*100}
	}
	ctx := context.Background()
	if _, err := b.ApplyPool(ctx, spec); err != nil {
		t.Fatal(err)
	}
	var made []VolumeState
	t.Cleanup(func() {
		for _, host := range keys(spec.Hosts) {
			eng, _ := b.engines.Get(host)
			listed, _ := eng.ListContainers(ctx, spec.Name)
			for _, c := range listed {
				_ = eng.Remove(ctx, c.ID)
			}
		}
		for _, v := range made {
			eng, _ := b.engines.Get(v.Spec.Host)
			_ = eng.RemoveVolume(ctx, v.Spec.Name)
		}
		if err := b.DeletePool(ctx, spec.Name); err != nil {
			t.Errorf("deleting pool: %v", err)
		}
	})

	hosts := map[string]bool{}
	for i := range len(env.Engines) {
		v, err := b.CreateVolume(ctx, VolumeSpec{Pool: spec.Name, Name: fmt.Sprintf("bkvol-%d", i), SizeBytes: 600 << 20, SpreadGroup: "pg"})
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, v)
		hosts[v.Spec.Host] = true
	}
	if len(hosts) != len(env.Engines) {
		t.Errorf("volumes of one spread group on %d hosts, want %d", len(hosts), len(env.Engines))
	}
	_, err := b.PlanVolume(ctx, VolumeSpec{Pool: spec.Name, Name: "bkvol-big", SizeBytes: 600 << 20}, false)
	if err == nil || !strings.Contains(err.Error(), "disk 424MiB free") {
		t.Errorf("a 600MiB volume beside full disks: %v", err)
	}

	db := webSpec(env, spec.Name, "db")
	db.Options.Mounts = []engine.Mount{{Type: engine.MountVolume, Source: made[0].Spec.Name, Target: "/data"}}
	state, err := b.CreateContainer(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if state.Ref.Host != made[0].Spec.Host {
		t.Errorf("db landed on %s, its volume is on %s", state.Ref.Host, made[0].Spec.Host)
	}
	ref := VolumeRef{Pool: spec.Name, Name: made[0].Spec.Name, Host: made[0].Spec.Host}
	if err := b.DeleteVolume(ctx, ref); err == nil || !strings.Contains(err.Error(), "mounted by bk-volumes/db") {
		t.Errorf("deleting a mounted volume: %v", err)
	}
	if err := b.DeletePool(ctx, spec.Name); err == nil || !strings.Contains(err.Error(), "volume bkvol-1 (on ") {
		t.Errorf("deleting a pool that has volumes: %v", err)
	}

	other := newProcess(t, env)
	usage, err := other.PoolUsage(ctx, spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range usage.Hosts {
		if h.Volumes != 1 || h.DiskReserved != 600<<20 || h.DiskBytes != 1<<30 || h.DiskFree != 424<<20 {
			t.Errorf("another process sees %s with %d volumes, disk %d of %d (%d free)", h.Name, h.Volumes, h.DiskReserved, h.DiskBytes, h.DiskFree)
		}
	}
}

// TestEmbeddedConcurrentGPUCreatesNeverShareADevice: GPU containers created
// at once get distinct ids (as NVIDIA_VISIBLE_DEVICES and the label), and
// one more than there are GPUs does not fit; another process's usage
// counts the ids held.
func TestEmbeddedConcurrentGPUCreatesNeverShareADevice(t *testing.T) {
	env := testenv.Require(t)
	b := newProcess(t, env)
	spec := PoolSpec{Name: "bk-gpus", Strategy: "spread", Hosts: map[string]PoolHostSpec{
		env.Engines[0].Name: {MilliCPU: 4000, MemoryBytes: 1 << 30, GPUs: 3, PortMin: 37100, PortMax: 37199},
	}}
	ctx := context.Background()
	if _, err := b.ApplyPool(ctx, spec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		eng, _ := b.engines.Get(env.Engines[0].Name)
		listed, _ := eng.ListContainers(ctx, spec.Name)
		for _, c := range listed {
			_ = eng.Remove(ctx, c.ID)
		}
		if err := b.DeletePool(ctx, spec.Name); err != nil {
			t.Errorf("deleting pool: %v", err)
		}
	})
	const n = 4
	states := make([]ContainerState, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := webSpec(env, spec.Name, fmt.Sprintf("gpu-%d", i))
			c.Ports, c.GPUs = nil, 1
			states[i], errs[i] = b.CreateContainer(ctx, c)
		}()
	}
	wg.Wait()
	held := map[string]string{}
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			if !strings.Contains(err.Error(), "gpus 0 free") {
				t.Errorf("gpu-%d: %v", i, err)
			}
			continue
		}
		if len(states[i].GPUIDs) != 1 {
			t.Fatalf("gpu-%d holds %v", i, states[i].GPUIDs)
		}
		id := states[i].GPUIDs[0]
		if other, ok := held[id]; ok {
			t.Errorf("gpu %s given to %s and gpu-%d", id, other, i)
		}
		held[id] = fmt.Sprint("gpu-", i)
	}
	if failed != 1 || len(held) != 3 {
		t.Errorf("%d failed, %d gpus handed out; want 1 and 3", failed, len(held))
	}
	usage, err := newProcess(t, env).PoolUsage(ctx, spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if h := usage.Hosts[0]; h.GPUs != 3 || h.GPUsReserved != len(held) || h.GPUsFree != 3-len(held) || len(h.GPUIDsHeld) != len(held) {
		t.Errorf("another process sees %d of %d GPUs held (%d free, ids %v), want the %d handed out", h.GPUsReserved, h.GPUs, h.GPUsFree, h.GPUIDsHeld, len(held))
	}
}
