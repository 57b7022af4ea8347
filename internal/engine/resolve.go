package engine

import (
	"context"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/registry"
)

// run is the image reference the container is created with.
func (s ContainerSpec) run() string {
	if s.RepoDigest != "" {
		return s.RepoDigest
	}
	return s.Image
}

// ResolveImage asks the image's registry, through this engine, which
// manifest the reference names now, and returns it as Docker writes repo
// digests: "name@sha256:…". Nothing is pulled. A reference that already
// carries a digest is its own answer. An image that exists on this engine
// and came from no registry (built or imported here: no repo digest) is
// run as it is: the answer is "".
func (e *Engine) ResolveImage(ctx context.Context, ref string, auth *RegistryAuth) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", &RefusedError{Engine: e.name, Op: "parse the image reference", Setting: "image", Image: ref, Err: err}
	}
	if canonical, ok := named.(reference.Canonical); ok {
		return reference.FamiliarName(canonical) + "@" + canonical.Digest().String(), nil
	}
	var localOnly bool
	err = e.do(ctx, "inspect image "+ref, 0, func(ctx context.Context) error {
		inspected, err := e.api.ImageInspect(ctx, ref)
		localOnly = err == nil && len(inspected.RepoDigests) == 0
		return err
	})
	switch {
	case localOnly:
		return "", nil
	case IsUnreachable(err):
		return "", err
	case err != nil && !cerrdefs.IsNotFound(err):
		return "", e.refused("inspect image "+ref, ref, err)
	}
	encoded, err := encodeAuth(auth)
	if err != nil {
		return "", fmt.Errorf("engine %s: %w", e.name, err)
	}
	var digest string
	err = e.do(ctx, "look up image "+ref, 0, func(ctx context.Context) error {
		inspected, err := e.api.DistributionInspect(ctx, ref, encoded)
		digest = inspected.Descriptor.Digest.String()
		return err
	})
	if IsUnreachable(err) {
		return "", err
	}
	if err != nil {
		return "", &RefusedError{Engine: e.name, Op: lookupOp(reference.Domain(named), auth), Setting: "image", Image: ref, Err: err}
	}
	return reference.FamiliarName(named) + "@" + digest, nil
}

// lookupOp says which registry was asked and with which credentials (never
// the secret), so that a refusal says what to fix.
func lookupOp(registryHost string, auth *RegistryAuth) string {
	if auth == nil {
		return fmt.Sprintf("look up its digest at registry %s, without credentials: if it needs them, give them with registry_auth", registryHost)
	}
	return fmt.Sprintf("look up its digest at registry %s as user %q", registryHost, auth.Username)
}

// encodeAuth is auth in the header form the engine API takes; "" for none.
func encodeAuth(auth *RegistryAuth) (string, error) {
	if auth == nil {
		return "", nil
	}
	encoded, err := registry.EncodeAuthConfig(registry.AuthConfig{
		ServerAddress: auth.ServerAddress,
		Username:      auth.Username,
		Password:      auth.Password,
		IdentityToken: auth.IdentityToken,
	})
	if err != nil {
		return "", fmt.Errorf("encode registry auth: %w", err)
	}
	return encoded, nil
}
