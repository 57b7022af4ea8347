package provider

import (
	"sync"

	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

// leftoverKey marks, in private state, a container kept after a failed
// create because its engine stopped answering before it could be removed.
// Terraform taints it and plans its replacement as a create with no prior
// state or private data, so the create cannot learn from its own request
// which container it replaces.
const leftoverKey = "leftover"

// leftoverMemo carries that knowledge from Read (refresh, which sees the
// tainted object) to ModifyPlan (which plans its replacement) within one
// provider instance: the replacement then gives the leftover's name and
// capacity back, as any replacement does, instead of failing on the name.
type leftoverMemo struct {
	mu   sync.Mutex
	refs map[string]backend.ContainerRef // by resource id: <pool>/<name>
}

func (m *leftoverMemo) remember(id string, ref backend.ContainerRef) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.refs == nil {
		m.refs = map[string]backend.ContainerRef{}
	}
	m.refs[id] = ref
}

// take returns and forgets the leftover recorded for id.
func (m *leftoverMemo) take(id string) (backend.ContainerRef, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ref, ok := m.refs[id]
	delete(m.refs, id)
	return ref, ok
}
