package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/berthsh/terraform-provider-berth/internal/testenv"
)

// Registry ports of this package's tests: 38996-38999 (issue 7 images).
func TestResolveImageAtAuthenticatedRegistry(t *testing.T) {
	env := testenv.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	registry := testenv.StartRegistry(t, 38996, 38999)
	pushed := registry.Push(ctx, t, env.Engines[0], env.Image, "berth/resolve:v1", "v1")
	ref := registry.Addr + "/berth/resolve:v1"
	// Another engine, which has never seen the image, asks the registry.
	e := engineAt(t, Config{Name: env.Engines[1].Name, Endpoint: env.Engines[1].Endpoint})
	good := &RegistryAuth{ServerAddress: registry.Addr, Username: registry.Username, Password: registry.Password}

	got, err := e.ResolveImage(ctx, ref, good)
	if err != nil || got != pushed {
		t.Fatalf("ResolveImage(%s) = %q, %v; want the pushed %s", ref, got, err, pushed)
	}
	if _, err := e.api.ImageInspect(ctx, got); err == nil {
		t.Fatalf("resolving pulled %s onto %s: only the chosen host pulls, at create", got, e.Name())
	}
	if err := e.EnsureImage(ctx, got, good); err != nil {
		t.Fatalf("pull by digest: %v", err)
	}
	if again, err := e.ResolveImage(ctx, got, nil); err != nil || again != pushed {
		t.Fatalf("a digest reference resolves to itself without asking: %q, %v", again, err)
	}
	if local, err := e.ResolveImage(ctx, env.Image, nil); err != nil || local != "" {
		t.Fatalf("an imported image (no registry digest) runs as it is: got %q, %v", local, err)
	}

	for name, auth := range map[string]*RegistryAuth{
		"wrong password": {ServerAddress: registry.Addr, Username: registry.Username, Password: "wrong"},
		"no credentials": nil,
	} {
		_, err := e.ResolveImage(ctx, ref, auth)
		var refused *RefusedError
		if !errors.As(err, &refused) || IsUnreachable(err) {
			t.Fatalf("%s: want a refusal (the request's problem, not the host's), got %T %v", name, err, err)
		}
		for _, want := range []string{ref, "registry " + registry.Addr} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error does not name %q: %v", name, want, err)
			}
		}
		if strings.Contains(err.Error(), registry.Password) {
			t.Errorf("%s: error shows the password: %v", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
}
