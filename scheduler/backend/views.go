package backend

import (
	"context"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
)

// A verification needs the host's containers of the pool as they are just
// after its own create (first check) or its own start (final check).
// Listing them for each one made the engine serialize every container of
// the host twice per create: O(N²) engine work for an apply of N. Instead,
// each host a create goes to is watched: one events stream per host and
// pool (engine.WatchContainers), merged with one full list.
//
// The engine logs every create, start, death and removal in one order, and
// each event right after the change it reports (a create's before the create
// returns). Once the stream has delivered this container's own event, the
// view holds every container whose create was logged before it, with its
// state as of then. That is what the proof of fitsInOrder's final rule
// needs: for A, created first, and B, overflowing together, either A's
// create was logged before B's start, and B's final view counts A, or after
// it, and A's final view, which reaches A's own start, counts B running.
// When the event does not come within viewWait, or the stream broke, the
// verification lists, as before; views that mix with lists of other
// processes keep the rule (a listed container's create was logged before
// the list, a listed "running" one started before it).

// viewWait bounds how long a verification waits for its own event before
// it lists instead. The engine logs the event before it answers the
// request, so the wait is the stream's latency.
const viewWait = 2 * time.Second

// viewReplay is how far back a new stream asks for the events the engine
// still holds, so that a stream reaching the engine after the first create
// still delivers it.
const viewReplay = 10 * time.Second

// hostViews are a pool's watched hosts, by host.
type hostViews struct {
	mu     sync.Mutex
	byHost map[string]*hostView
}

func newHostViews() *hostViews {
	return &hostViews{byHost: map[string]*hostView{}}
}

// watch starts watching the host's containers of pool, unless it is watched.
// Call it before a create, so the create's event is in the stream.
func (vs *hostViews) watch(eng *engine.Engine, pool string) {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if _, ok := vs.byHost[eng.Name()]; ok {
		return
	}
	v := &hostView{
		changed:    make(chan struct{}),
		seen:       map[string]map[string]bool{},
		containers: map[string]engine.Container{},
		running:    map[string]bool{},
		gone:       map[string]bool{},
	}
	vs.byHost[eng.Name()] = v
	go func() {
		// Lives as long as the process; a broken stream is replaced by the
		// next create's watch.
		_ = eng.WatchContainers(context.Background(), pool, time.Now().Add(-viewReplay), v.apply)
		vs.mu.Lock()
		if vs.byHost[eng.Name()] == v {
			delete(vs.byHost, eng.Name())
		}
		vs.mu.Unlock()
		v.mu.Lock()
		v.broken = true
		v.notifyLocked()
		v.mu.Unlock()
	}()
}

func (vs *hostViews) get(host string) *hostView {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	return vs.byHost[host]
}

// hostView is one host's containers of one pool, from its events stream
// and one full list taken once the stream was shown to deliver.
type hostView struct {
	mu         sync.Mutex
	changed    chan struct{} // closed at each change, then replaced
	seen       map[string]map[string]bool
	listed     bool
	containers map[string]engine.Container // by id
	running    map[string]bool             // from start and die events, newer than any list
	gone       map[string]bool             // removed: a list taken before must not bring them back
	broken     bool
}

func (v *hostView) apply(ev engine.ContainerEvent) {
	id := ev.Container.ID
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seen[id] == nil {
		v.seen[id] = map[string]bool{}
	}
	v.seen[id][ev.Action] = true
	switch ev.Action {
	case "create":
		if _, ok := v.containers[id]; !ok && !v.gone[id] {
			c := ev.Container
			c.State = container.StateCreated
			v.containers[id] = c
		}
	case "start":
		v.running[id] = true
	case "die":
		v.running[id] = false
	case "destroy":
		v.gone[id] = true
		delete(v.containers, id)
	}
	v.notifyLocked()
}

func (v *hostView) notifyLocked() {
	close(v.changed)
	v.changed = make(chan struct{})
}

// after returns the host's containers once the stream delivered the
// container's action ("create" or "start"); ok is false when it did not in
// time (or the stream broke): then the caller lists.
func (v *hostView) after(ctx context.Context, eng *engine.Engine, pool, id, action string) (containers []engine.Container, ok bool) {
	timer := time.NewTimer(viewWait)
	defer timer.Stop()
	for {
		v.mu.Lock()
		switch {
		case v.broken:
			v.mu.Unlock()
			return nil, false
		case v.seen[id][action] && v.listed:
			defer v.mu.Unlock()
			return v.snapshotLocked(), true
		case v.seen[id][action]:
			v.mu.Unlock()
			return v.list(ctx, eng, pool)
		}
		changed := v.changed
		v.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			return nil, false
		case <-ctx.Done():
			return nil, false
		}
	}
}

// list completes the view with a full list, taken after the stream
// delivered an event: from then on it delivers every event, so the list
// and the events after it miss nothing.
func (v *hostView) list(ctx context.Context, eng *engine.Engine, pool string) ([]engine.Container, bool) {
	listed, err := eng.ListContainers(ctx, pool)
	if err != nil {
		return nil, false
	}
	return v.merge(listed), true
}

// merge adds a full list to what the events said: a container removed
// since stays removed, and its events' state outranks the list's.
func (v *hostView) merge(listed []engine.Container) []engine.Container {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, c := range listed {
		known, ok := v.containers[c.ID]
		switch {
		case v.gone[c.ID]:
		case !ok:
			v.containers[c.ID] = c
		case known.Created.IsZero(): // from its create event: the list has its time
			known.Created = c.Created
			v.containers[c.ID] = known
		}
	}
	v.listed = true
	return v.snapshotLocked()
}

func (v *hostView) snapshotLocked() []engine.Container {
	out := make([]engine.Container, 0, len(v.containers))
	for id, c := range v.containers {
		if running, ok := v.running[id]; ok {
			c.Running = running
		}
		out = append(out, c)
	}
	return out
}
