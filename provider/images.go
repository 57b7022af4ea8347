package provider

import (
	"context"
	"fmt"
	"sync"

	"github.com/distribution/reference"

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
