package engine

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"
)

// Engine errors come in two kinds, and callers treat them differently:
//   - *UnreachableError: the engine did not answer. That is the host's
//     problem: a create may try another host, and the host is unhealthy
//     for this process until it answers again.
//   - any other error: the engine answered, and said no. That is the
//     request's problem (an image that cannot be pulled, a configuration
//     Docker refuses): it fails that one request and says nothing about
//     the host. *RefusedError names what was refused when it is known.

// UnreachableError says that an engine did not answer, and how: a timeout,
// a refused connection, a TLS or permission failure, a broken connection.
type UnreachableError struct {
	Engine, Endpoint string
	Op               string // the request that found out
	Answer           string // what the engine answered instead
	Err              error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("engine %s (%s) unreachable: %s (during %s): %v", e.Engine, e.Endpoint, e.Answer, e.Op, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// IsUnreachable reports whether err says an engine did not answer, as
// opposed to an engine that answered with an error.
func IsUnreachable(err error) bool {
	var unreachable *UnreachableError
	return errors.As(err, &unreachable)
}

// RefusedError is an engine's "no" to one request, with the setting it
// refused when the engine's message makes it clear: "image" (then Image
// names it), "networks", "memory", "cpu" or "healthcheck", as
// berth_container calls them.
type RefusedError struct {
	Engine  string
	Op      string
	Setting string
	Image   string
	Err     error
}

func (e *RefusedError) Error() string {
	switch e.Setting {
	case "":
		return fmt.Sprintf("engine %s refused to %s: %v", e.Engine, e.Op, e.Err)
	case "image":
		return fmt.Sprintf("engine %s refused the image %s (%s): %v", e.Engine, e.Image, e.Op, e.Err)
	}
	return fmt.Sprintf("engine %s refused the %s setting (%s): %v", e.Engine, e.Setting, e.Op, e.Err)
}

func (e *RefusedError) Unwrap() error { return e.Err }

// errEngineDeadline is the cause of a request context that ran out of the
// engine's own time (engine_timeout), as opposed to the caller's.
var errEngineDeadline = errors.New("engine deadline")

// unanswered classifies a failed request: nil when the engine answered (or
// when the caller's own context ended, which says nothing about the engine).
func (e *Engine) unanswered(ctx, callCtx context.Context, op string, limit time.Duration, err error) *UnreachableError {
	if err == nil || ctx.Err() != nil {
		return nil //nolint:nilerr // the caller's own deadline says nothing about the engine
	}
	var already *UnreachableError
	if errors.As(err, &already) {
		return already
	}
	fail := func(answer string) *UnreachableError {
		return &UnreachableError{Engine: e.name, Endpoint: e.endpoint, Op: op, Answer: answer, Err: err}
	}
	if callCtx.Err() != nil && errors.Is(context.Cause(callCtx), errEngineDeadline) {
		return fail(fmt.Sprintf("no answer within %s (engine_timeout)", limit))
	}
	if client.IsErrConnectionFailed(err) {
		return fail(e.connectAnswer(err))
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return fail("the connection broke")
	}
	return nil
}

// connectAnswer says why a connection failed. The Docker client replaces
// refused and timed-out dials by a generic message, so the dial's own error
// is taken from the dialer when the client's is not specific.
func (e *Engine) connectAnswer(err error) string {
	var verify *tls.CertificateVerificationError
	var unknownAuthority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var record tls.RecordHeaderError
	switch {
	case errors.As(err, &verify), errors.As(err, &unknownAuthority), errors.As(err, &hostname):
		return "failed TLS verification"
	case errors.As(err, &record):
		return "does not speak TLS"
	case strings.Contains(err.Error(), "bad certificate") || strings.Contains(err.Error(), "certificate required"):
		return "refused our TLS client certificate"
	case strings.Contains(err.Error(), "Are you trying to connect to a TLS-enabled daemon"):
		return "speaks TLS, and tls is not set"
	case errors.Is(err, os.ErrPermission) || strings.Contains(err.Error(), "permission denied"):
		return "permission denied"
	}
	dialErr := e.dialer.lastError()
	switch {
	case dialErr == nil:
		return "cannot connect"
	case errors.Is(dialErr, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(dialErr, syscall.ENOENT):
		return "no socket at the endpoint"
	case errors.Is(dialErr, os.ErrPermission):
		return "permission denied"
	case errors.Is(dialErr, os.ErrDeadlineExceeded) || isTimeout(dialErr):
		return "connection timed out"
	}
	return "cannot connect: " + dialErr.Error()
}

func isTimeout(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}

// fail names the engine in the error of a request the engine answered;
// an *UnreachableError is passed on as it is.
func (e *Engine) fail(op string, err error) error {
	if IsUnreachable(err) {
		return err
	}
	return fmt.Errorf("engine %s: %s: %w", e.name, op, err)
}

// refused describes what the engine refused in a create, from its message:
// Docker reports these only as text (or as a bare invalid-parameter code).
func (e *Engine) refused(op, image string, err error) error {
	if IsUnreachable(err) {
		return err
	}
	text := err.Error()
	setting := ""
	switch {
	case cerrdefs.IsNotFound(err) && strings.Contains(text, "image"):
		setting = "image"
	case strings.Contains(text, "network") || strings.Contains(text, "IP address") || strings.Contains(text, "Address already in use"):
		setting = "networks"
	case strings.Contains(text, "emory limit") || strings.Contains(text, "emory reservation"):
		setting = "memory"
	case strings.Contains(text, "Range of CPUs") || strings.Contains(text, "NanoCPUs") || strings.Contains(text, "CPU"):
		setting = "cpu"
	case strings.Contains(text, "in Healthcheck") || strings.Contains(text, "healthcheck"):
		setting = "healthcheck"
	}
	return &RefusedError{Engine: e.name, Op: op, Setting: setting, Image: image, Err: err}
}
