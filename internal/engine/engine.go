package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"
)

// Engine is one Docker engine of the provider block.
type Engine struct {
	name     string
	endpoint string
	api      *client.Client
	pull     retryPolicy

	negotiateMu sync.Mutex
	negotiated  bool
}

// negotiate settles the API version before a request that encodes filters:
// the client reads its version for them without the lock its own lazy
// negotiation takes, so two first requests at once would race. A failed
// ping leaves it to the request itself, which then fails the same way.
func (e *Engine) negotiate(ctx context.Context) {
	e.negotiateMu.Lock()
	defer e.negotiateMu.Unlock()
	if e.negotiated {
		return
	}
	if ping, err := e.api.Ping(ctx); err == nil {
		e.api.NegotiateAPIVersionPing(ping)
		e.negotiated = true
	}
}

// ErrNameInUse is returned (wrapped) by CreateContainer when the engine
// already has a container of that name.
var ErrNameInUse = errors.New("container name already in use")

// IsNotFound reports whether err says an engine object does not exist.
func IsNotFound(err error) bool {
	return cerrdefs.IsNotFound(err)
}

// Name is the engine's key in the provider block.
func (e *Engine) Name() string { return e.name }

// Endpoint is the engine's address as configured.
func (e *Engine) Endpoint() string { return e.endpoint }

// Info asks the engine about itself; this is also the reachability check.
func (e *Engine) Info(ctx context.Context) (Info, error) {
	info, err := e.api.Info(ctx)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return Info{}, e.unreachable(err)
		}
		return Info{}, e.fail("info", err)
	}
	return Info{
		NCPU:          info.NCPU,
		MemTotal:      info.MemTotal,
		ServerVersion: info.ServerVersion,
		APIVersion:    e.api.ClientVersion(), // negotiated by the request above
	}, nil
}

// fail names the engine in an error, and says plainly when it could not be
// reached at all.
func (e *Engine) fail(op string, err error) error {
	if client.IsErrConnectionFailed(err) {
		var verifyErr *tls.CertificateVerificationError
		if errors.As(err, &verifyErr) {
			return fmt.Errorf("engine %s (%s) failed TLS verification: %w", e.name, e.endpoint, err)
		}
		return e.unreachable(err)
	}
	return fmt.Errorf("engine %s: %s: %w", e.name, op, err)
}

func (e *Engine) unreachable(err error) error {
	return fmt.Errorf("engine %s (%s) unreachable: %w", e.name, e.endpoint, err)
}
