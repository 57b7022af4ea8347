package provider

import (
	"context"
	"fmt"
	"sync"

	"github.com/distribution/reference"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

// imageDigests resolves each image reference once per provider instance,
// that is once per apply: all creates of an image share the first answer,
// so two hosts pulling the same tag a minute apart still run one digest.
// A failed resolution is not kept; the next create asks again.
type imageDigests struct {
	mu    sync.Mutex
	byRef map[string]*digestCall
}

type digestCall struct {
	done   chan struct{}
	digest string
	err    error
}

func (d *imageDigests) resolve(ctx context.Context, be backend.Backend, req backend.ImageRequest) (string, error) {
	d.mu.Lock()
	if d.byRef == nil {
		d.byRef = map[string]*digestCall{}
	}
	call, ok := d.byRef[req.Image]
	if !ok {
		call = &digestCall{done: make(chan struct{})}
		d.byRef[req.Image] = call
	}
	d.mu.Unlock()
	if ok {
		select {
		case <-call.done:
			return call.digest, call.err
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	call.digest, call.err = be.ResolveImage(ctx, req)
	if call.err != nil {
		d.mu.Lock()
		delete(d.byRef, req.Image)
		d.mu.Unlock()
	}
	close(call.done)
	return call.digest, call.err
}

func parseImageReference(image string) error {
	if _, err := reference.ParseNormalizedNamed(image); err != nil {
		return fmt.Errorf("%q: %w", image, err)
	}
	return nil
}

// pullTriggers are recorded on the container (engine.ContainerOptions), so
// that an import restores them: nil when unset, empty when [].
func (m ContainerResourceModel) pullTriggers(ctx context.Context, diags *diag.Diagnostics) []string {
	if m.PullTriggers.IsNull() || m.PullTriggers.IsUnknown() {
		return nil
	}
	triggers := []string{}
	diags.Append(m.PullTriggers.ElementsAs(ctx, &triggers, false)...)
	return triggers
}

func (m *ContainerResourceModel) importPullTriggers(ctx context.Context, triggers []string, diags *diag.Diagnostics) {
	m.PullTriggers = types.ListNull(types.StringType)
	if triggers != nil {
		var d diag.Diagnostics
		m.PullTriggers, d = types.ListValueFrom(ctx, types.StringType, triggers)
		diags.Append(d...)
	}
}
