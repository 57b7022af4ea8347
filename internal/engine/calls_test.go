package engine

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// wedged is an engine that accepts connections and never answers.
type wedged struct {
	socket   string
	accepted atomic.Int64
	mu       sync.Mutex
	conns    []net.Conn
}

func newWedged(t *testing.T) *wedged {
	t.Helper()
	w := &wedged{socket: filepath.Join(t.TempDir(), "wedged.sock")}
	listener, err := net.Listen("unix", w.socket)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			w.accepted.Add(1)
			w.mu.Lock()
			w.conns = append(w.conns, conn)
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = listener.Close()
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, c := range w.conns {
			_ = c.Close()
		}
	})
	return w
}

func (w *wedged) engine(t *testing.T, timeout time.Duration) *Engine {
	t.Helper()
	return engineAt(t, Config{Name: "stuck", Endpoint: "unix://" + w.socket, Timeout: timeout})
}

// A wedged engine costs one timeout, then requests fail at once with the
// same cause instead of dialling and waiting again each time.
func TestWedgedEngineTimesOutOnceThenFailsFast(t *testing.T) {
	w := newWedged(t)
	e := w.engine(t, 300*time.Millisecond)
	ctx := context.Background()

	_, err := e.ListContainers(ctx, "dc1")
	if !IsUnreachable(err) || !strings.Contains(err.Error(), "no answer within 300ms (engine_timeout)") {
		t.Fatalf("first request to a wedged engine: %v", err)
	}
	first := w.accepted.Load()
	for range 20 {
		_, err := e.ListContainers(ctx, "dc1")
		if !IsUnreachable(err) || !strings.Contains(err.Error(), "no answer within") {
			t.Fatalf("a later request: %v", err)
		}
		if _, err := e.InspectContainer(ctx, "abc"); !IsUnreachable(err) {
			t.Fatalf("a later inspect: %v", err)
		}
	}
	if again := w.accepted.Load(); again != first {
		t.Errorf("the engine was dialled %d more times after it failed to answer", again-first)
	}
}

// Negotiating the API version holds no lock across the ping: a caller
// whose own context ends returns while another caller's ping still waits.
func TestNegotiationHoldsNoLockAcrossPing(t *testing.T) {
	w := newWedged(t)
	e := w.engine(t, time.Minute)
	slow := make(chan error, 1)
	go func() {
		_, err := e.ListContainers(context.Background(), "")
		slow <- err
	}()
	for w.accepted.Load() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := e.ListContainers(ctx, "")
	if !errors.Is(err, context.DeadlineExceeded) || IsUnreachable(err) {
		t.Errorf("a caller whose context ended: %v, want its own deadline (not the engine's fault)", err)
	}
	select {
	case err := <-slow:
		t.Fatalf("the first caller finished first (%v): the second one waited for it", err)
	default:
	}
}

func TestUnreachableSaysWhatTheEngineAnswered(t *testing.T) {
	dir := t.TempDir()
	missing := engineAt(t, Config{Name: "gone", Endpoint: "unix://" + filepath.Join(dir, "none.sock")})
	if _, err := missing.Info(context.Background()); !IsUnreachable(err) || !strings.Contains(err.Error(), "unreachable: no socket at the endpoint") {
		t.Errorf("no socket: %v", err)
	}

	// A socket file nobody listens on refuses connections.
	path := filepath.Join(dir, "closed.sock")
	listener, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	listener.SetUnlinkOnClose(false)
	_ = listener.Close()
	refused := engineAt(t, Config{Name: "refused", Endpoint: "unix://" + path})
	if _, err := refused.Info(context.Background()); !IsUnreachable(err) || !strings.Contains(err.Error(), "unreachable: connection refused") {
		t.Errorf("refused: %v", err)
	}
}
