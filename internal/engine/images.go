package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
)

// retryPolicy bounds retries: attempts in all, waiting first, then twice as
// long each time up to most.
type retryPolicy struct {
	attempts int
	first    time.Duration
	most     time.Duration
}

func defaultPullRetry() retryPolicy {
	return retryPolicy{attempts: 4, first: 500 * time.Millisecond, most: 4 * time.Second}
}

// EnsureImage pulls image only when the engine does not have it yet.
func (e *Engine) EnsureImage(ctx context.Context, ref string, auth *RegistryAuth) error {
	err := e.do(ctx, "inspect image "+ref, 0, func(ctx context.Context) error {
		_, err := e.api.ImageInspect(ctx, ref)
		return err
	})
	if err == nil {
		return nil
	}
	if !cerrdefs.IsNotFound(err) {
		return e.refused("inspect image "+ref, ref, err)
	}
	encoded, err := encodeAuth(auth)
	if err != nil {
		return fmt.Errorf("engine %s: %w", e.name, err)
	}
	opts := image.PullOptions{RegistryAuth: encoded}
	wait := e.pull.first
	for attempt := 1; ; attempt++ {
		err := e.pullOnce(ctx, ref, opts)
		if err == nil {
			return nil
		}
		if IsUnreachable(err) {
			return err
		}
		if !pullRetryable(err) || attempt >= e.pull.attempts {
			op := fmt.Sprintf("pull image %s (attempt %d of %d)", ref, attempt, e.pull.attempts)
			return &RefusedError{Engine: e.name, Op: op, Setting: "image", Image: ref, Err: err}
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("engine %s: pull image %s: gave up after attempt %d (%w): %w", e.name, ref, attempt, err, ctx.Err())
		case <-timer.C:
		}
		wait = min(2*wait, e.pull.most)
	}
}

// pullRetryable is false for errors another attempt cannot fix.
func pullRetryable(err error) bool {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		IsUnreachable(err),
		cerrdefs.IsNotFound(err), cerrdefs.IsUnauthorized(err),
		cerrdefs.IsPermissionDenied(err), cerrdefs.IsInvalidArgument(err):
		return false
	}
	return true
}

// pullWithout bounds a pull by its progress rather than its length: the
// engine must report progress within its timeout, for as long as it takes.
const pullWithout = 24 * time.Hour

// pullOnce reads the pull's progress stream to its end: failures that
// happen after the pull started are reported inside the stream.
func (e *Engine) pullOnce(ctx context.Context, ref string, opts image.PullOptions) error {
	return e.do(ctx, "pull image "+ref, pullWithout, func(ctx context.Context) error {
		ctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		idle := time.AfterFunc(e.timeout, func() { cancel(errEngineDeadline) })
		defer idle.Stop()
		err := e.readPull(ctx, ref, opts, func() { idle.Reset(e.timeout) })
		if errors.Is(context.Cause(ctx), errEngineDeadline) {
			return &UnreachableError{Engine: e.name, Endpoint: e.endpoint, Op: "pull image " + ref,
				Answer: fmt.Sprintf("no pull progress within %s (engine_timeout)", e.timeout), Err: err}
		}
		return err
	})
}

func (e *Engine) readPull(ctx context.Context, ref string, opts image.PullOptions, progressed func()) error {
	stream, err := e.api.ImagePull(ctx, ref, opts)
	if err != nil {
		return err
	}
	defer stream.Close()
	decoder := json.NewDecoder(stream)
	for {
		progressed()
		var message struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := decoder.Decode(&message); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("reading pull progress: %w", err)
		}
		if message.ErrorDetail.Message != "" {
			return errors.New(message.ErrorDetail.Message)
		}
		if message.Error != "" {
			return errors.New(message.Error)
		}
	}
}
