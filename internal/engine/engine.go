package engine

import (
	"context"
	"errors"
	"net/url"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"
)

// Engine is one Docker engine of the provider block. Every request to it
// runs under a deadline (calls.go), and its errors say whether the engine
// did not answer or answered no (errors.go).
type Engine struct {
	name     string
	endpoint string
	address  string
	api      *client.Client
	dialer   *dialer
	pull     retryPolicy
	timeout  time.Duration

	negotiation negotiation
	reach       reachability
	skipped     malformedSeen
	calls       atomic.Int64 // requests sent to the engine, the ping included
}

// ErrNameInUse is returned (wrapped) by CreateContainer when the engine
// already has a container of that name.
var ErrNameInUse = errors.New("container name already in use")

// IsNotFound reports whether err says an engine object does not exist.
func IsNotFound(err error) bool {
	return cerrdefs.IsNotFound(err)
}

// Calls counts the requests sent to the engine so far (an events stream
// counts once): the cost of an operation in engine work, deterministic
// where timings are not.
func (e *Engine) Calls() int64 { return e.calls.Load() }

// Name is the engine's key in the provider block.
func (e *Engine) Name() string { return e.name }

// Endpoint is the engine's address as configured.
func (e *Engine) Endpoint() string { return e.endpoint }

// Address is where the engine's published ports are reached.
func (e *Engine) Address() string { return e.address }

// reachAddress is the configured address, else the endpoint's host: a
// local socket's ports are reached on the loopback address, a tcp:// or
// ssh:// engine's on the host the endpoint names.
func reachAddress(cfg Config) string {
	if cfg.Address != "" {
		return cfg.Address
	}
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || u.Scheme == "unix" || u.Hostname() == "" {
		return "127.0.0.1"
	}
	return u.Hostname()
}

// Info asks the engine about itself; this is also the reachability check.
func (e *Engine) Info(ctx context.Context) (Info, error) {
	var info Info
	err := e.do(ctx, "info", 0, func(ctx context.Context) error {
		answer, err := e.api.Info(ctx)
		info = Info{
			NCPU:          answer.NCPU,
			MemTotal:      answer.MemTotal,
			ServerVersion: answer.ServerVersion,
			APIVersion:    e.api.ClientVersion(), // negotiated before the request
		}
		return err
	})
	if err != nil {
		return Info{}, e.fail("info", err)
	}
	return info, nil
}
