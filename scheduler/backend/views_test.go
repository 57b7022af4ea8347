package backend

import (
	"testing"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
)

// TestHostViewMergesEventsAndOneList: events and a list taken after them
// make one view, in which a removed container stays removed, a start or a
// death seen in the stream outranks the list's older state, and a
// container known from its create event gets its time from the list.
func TestHostViewMergesEventsAndOneList(t *testing.T) {
	v := newHostViews()
	view := &hostView{changed: make(chan struct{}), seen: map[string]map[string]bool{},
		containers: map[string]engine.Container{}, running: map[string]bool{}, gone: map[string]bool{}}
	v.byHost["h"] = view
	created := time.Unix(1700000000, 0)
	event := func(action, id string) {
		view.apply(engine.ContainerEvent{Action: action, Container: engine.Container{ID: id, Pool: "p", Name: id}})
	}
	event("create", "new")     // made after the stream began
	event("start", "new")      //
	event("die", "old")        // listed as running by a list that answers later
	event("destroy", "gone")   // listed by a list the removal overtook
	event("create", "created") // created, not started
	listed := []engine.Container{
		{ID: "old", Name: "old", Running: true, Created: created},
		{ID: "gone", Name: "gone", Running: true, Created: created},
		{ID: "new", Name: "new", Created: created.Add(time.Second)},
		{ID: "kept", Name: "kept", Running: true, Created: created},
	}
	got := map[string]engine.Container{}
	for _, c := range view.merge(listed) {
		got[c.ID] = c
	}
	want := map[string]bool{"old": false, "new": true, "created": false, "kept": true} // id -> running
	if len(got) != len(want) {
		t.Fatalf("view holds %v, want the containers %v", got, want)
	}
	for id, running := range want {
		if c, ok := got[id]; !ok || c.Running != running {
			t.Errorf("%s: in view %v, running %v; want running %v", id, ok, c.Running, running)
		}
	}
	if !got["new"].Created.Equal(created.Add(time.Second)) {
		t.Errorf("new: created %v, want the list's %v", got["new"].Created, created.Add(time.Second))
	}
	if !view.seen["new"]["start"] || view.seen["kept"]["start"] {
		t.Errorf("seen %v: want new's start recorded and nothing for kept", view.seen)
	}
	if v.get("h") != view || v.get("other") != nil {
		t.Error("views are kept by host")
	}
}
