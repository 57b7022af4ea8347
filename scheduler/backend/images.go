package backend

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
)

// ImageRequest asks which digest an image's tag names now.
type ImageRequest struct {
	Pool  string
	Host  string // the pinned host, asked first; "" asks the pool's hosts in name order
	Image string
	// RegistryAuth is the container's own; nil uses the backend's
	// registry credentials (WithRegistries).
	RegistryAuth *engine.RegistryAuth
}

// Registries finds credentials for an image's registry
// (registryauth.Source).
type Registries interface {
	For(image string) (*engine.RegistryAuth, error)
}

// WithRegistries gives the backend the credentials it uses for pulls and
// lookups that carry none of their own: the provider block's in embedded
// mode, berthd's own (--registry-auth) when served. Call it before any
// other method.
func (b *Embedded) WithRegistries(registries Registries) *Embedded {
	b.registries = registries
	return b
}

// credentials are the container's own, else the backend's for its registry.
func (b *Embedded) credentials(image string, own *engine.RegistryAuth) (*engine.RegistryAuth, error) {
	if own != nil || b.registries == nil {
		return own, nil
	}
	return b.registries.For(image)
}

// ResolveImage asks an engine of the pool which manifest the image's tag
// names now (engine.ResolveImage): "name@sha256:…", or "" for an image
// built on the engines, which runs as it is. Nothing is pulled. An engine
// that does not answer passes the question to the next; a registry's
// refusal is the answer.
func (b *Embedded) ResolveImage(ctx context.Context, req ImageRequest) (string, error) {
	auth, err := b.credentials(req.Image, req.RegistryAuth)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", req.Image, err)
	}
	hosts, err := b.askable(ctx, req)
	if err != nil {
		return "", err
	}
	var unreachable []string
	for _, host := range hosts {
		eng, err := b.engines.Get(host)
		if err != nil {
			return "", err
		}
		digest, err := eng.ResolveImage(ctx, req.Image, auth)
		if engine.IsUnreachable(err) {
			unreachable = append(unreachable, err.Error())
			continue
		}
		if err != nil {
			return "", fmt.Errorf("resolving image %s for pool %s: %w", req.Image, req.Pool, err)
		}
		return digest, nil
	}
	return "", fmt.Errorf("resolving image %s: no engine of pool %s answered: %s", req.Image, req.Pool, strings.Join(unreachable, "; "))
}

// askable are the hosts to ask: the pinned one, else the pool's healthy
// hosts in name order.
func (b *Embedded) askable(ctx context.Context, req ImageRequest) ([]string, error) {
	if req.Host != "" {
		return []string{req.Host}, nil
	}
	ps, err := b.pool(ctx, req.Pool)
	if err != nil {
		return nil, err
	}
	var hosts []string
	for _, h := range ps.sched.Usage() {
		if h.Host.Healthy {
			hosts = append(hosts, h.Host.Name)
		}
	}
	if len(hosts) == 0 {
		return nil, errors.New("resolving image " + req.Image + ": pool " + req.Pool + " has no healthy host to ask")
	}
	sort.Strings(hosts)
	return hosts, nil
}

// ensureImage pulls what the container runs onto its host, when missing:
// the resolved digest, else the image as configured.
func (b *Embedded) ensureImage(ctx context.Context, eng *engine.Engine, spec ContainerSpec) error {
	auth, err := b.credentials(spec.Image, spec.RegistryAuth)
	if err != nil {
		return fmt.Errorf("image %s: %w", spec.Image, err)
	}
	run := spec.Image
	if spec.RepoDigest != "" {
		run = spec.RepoDigest
	}
	return b.images.ensure(ctx, eng, run, auth)
}
