package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestServeAnswersAndStopsOnCancel(t *testing.T) {
	t.Setenv("MESSAGE", "hello from the test")
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr, ok := listener.Addr().(*net.TCPAddr)
	if !ok {
		t.Fatalf("listener address %v is not TCP", listener.Addr())
	}
	port := strconv.Itoa(addr.Port)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- serve(ctx, listener) }()

	resp, err := http.Get("http://127.0.0.1:" + port + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	hostname, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	if want := "hostname=" + hostname + " message=hello from the test\n"; string(body) != want {
		t.Errorf("GET / = %q, want %q", body, want)
	}
	if err := probe(port); err != nil {
		t.Errorf("healthcheck of a running server: %v", err)
	}
	relayed, err := http.Get("http://127.0.0.1:" + port + "/fetch?url=" + url.QueryEscape("http://127.0.0.1:"+port+"/healthz"))
	if err != nil {
		t.Fatal(err)
	}
	relayedBody, err := io.ReadAll(relayed.Body)
	relayed.Body.Close()
	if err != nil || relayed.StatusCode != http.StatusOK || string(relayedBody) != "ok\n" {
		t.Errorf("GET /fetch of /healthz = %s %q (%v), want 200 \"ok\\n\"", relayed.Status, relayedBody, err)
	}

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("serve after cancel: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("serve did not return within 3s of cancellation")
	}
	if err := probe(port); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("healthcheck of a stopped server = %v, want connection refused", err)
	}
}
