package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/berthsh/terraform-provider-berth/scheduler/api"
	"github.com/berthsh/terraform-provider-berth/scheduler/store"
)

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }

// Bad input gets a 4xx with a stable code, never a 500; no engines needed.
func TestBadInput(t *testing.T) {
	ts := startServer(t, nil, store.NewMemory(), Config{})
	cases := []struct {
		name, method, path, key string
		body                    []byte
		status                  int
		code                    string
	}{
		{"bad JSON", "POST", api.PathLeases, "k1", []byte(`{"Spec": `), 400, api.CodeBadRequest},
		{"unknown field", "POST", api.PathLeases, "k2", []byte(`{"Spec": {"Pool": "p", "Name": "n"}, "Lease": 1}`), 400, api.CodeBadRequest},
		{"unknown nested field", "POST", api.PathContainers, "k3", []byte(`{"Spec": {"Pool": "p", "Title": "n"}}`), 400, api.CodeBadRequest},
		{"two values", "POST", api.PathContainerRead, "", []byte(`{} {}`), 400, api.CodeBadRequest},
		{"wrong type", "POST", api.PathContainerStop, "k4", []byte(`{"StopTimeout": "ten"}`), 400, api.CodeBadRequest},
		{"oversized", "POST", api.PathContainers, "k5", bytes.Repeat([]byte(" "), api.MaxBodyBytes+1), 413, api.CodeBodyTooLarge},
		{"no idempotency key", "POST", api.PathLeases, "", []byte(`{}`), 400, api.CodeMissingIdempotencyKey},
		{"key too long", "POST", api.PathLeases, strings.Repeat("k", 201), []byte(`{}`), 400, api.CodeMissingIdempotencyKey},
		{"no such route", "GET", "/v1/nothing", "", nil, 404, api.CodeNotFound},
		{"wrong method", "PATCH", api.PoolPath("p"), "", nil, 405, api.CodeMethodNotAllowed},
		{"missing pool", "GET", api.PoolUsagePath("nope"), "", nil, 404, api.CodePoolNotFound},
		{"lease without pool", "POST", api.PathLeases, "k6", []byte(`{"Spec": {}}`), 400, api.CodeBadRequest},
		{"lease TTL out of range", "POST", api.PathLeases, "k7", []byte(`{"Spec": {"Pool": "p", "Name": "n"}, "TTL": -5}`), 400, api.CodeBadRequest},
		{"find without name", "GET", api.PathContainerFind + "?pool=p", "", nil, 400, api.CodeBadRequest},
		{"pool name mismatch", "PUT", api.PoolPath("p"), "k8", []byte(`{"Name": "q"}`), 400, api.CodeBadRequest},
	}
	for _, c := range cases {
		r := ts.call(t, c.method, c.path, adminToken, c.key, c.body)
		if r.status != c.status || r.errorCode() != c.code {
			t.Errorf("%s: %s, want %d %s", c.name, r, c.status, c.code)
		}
		var e api.Error
		if err := json.Unmarshal(r.body, &e); err != nil || e.Message == "" {
			t.Errorf("%s: body %q is not {code, message}", c.name, r.body)
		}
	}
	if r := ts.call(t, "GET", api.PathHealthz, "", "", nil); r.status != http.StatusOK {
		t.Errorf("healthz: %s", r)
	}
}

// Every route of the contract is served: without a token it is a 401
// (healthz excepted), never a 404 or 405.
func TestEveryRouteIsServed(t *testing.T) {
	ts := startServer(t, nil, store.NewMemory(), Config{})
	for _, route := range api.Routes {
		method, path, _ := strings.Cut(route, " ")
		path = strings.NewReplacer("{pool}", "p", "{id}", "r1").Replace(path)
		want := http.StatusUnauthorized
		if route == api.RouteHealthz {
			want = http.StatusOK
		}
		if r := ts.call(t, method, path, "", "k", nil); r.status != want {
			t.Errorf("%s: %s, want %d", route, r, want)
		}
	}
}

// FuzzRequestBodies sends arbitrary bodies to every route that reads one.
// Bodies that are not JSON get 400; nothing gets a 500 internal (a panic).
// The seed corpus runs in every `go test`; `go test -fuzz` explores more.
func FuzzRequestBodies(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `null`, `[]`, `{"Spec": {"Pool": "p", "Name": "n"}}`, `{"Spec": {"Pool": "p", "Name": "n", "Resources": {"MilliCPU": -1}}, "TTL": 1e30}`,
		`{"Refs": [{"Pool": "p", "Name": "n", "Host": "h"}]}`, `{"Current": {"Ref": {"Pool": "p"}}, "Resources": {"MilliCPU": 9223372036854775807}}`,
		`{"Ref": {"Pool": "p", "Name": "n", "Host": "node9", "ContainerID": "x"}}`, `{"LeaseID": "r1-1", "PlannedHost": "h", "Spec": {"Pool": "p"}}`,
		`{"Name": "p", "Hosts": {"h": {"MilliCPU": -3}}}`, "{\"Spec\": \"\xff\"}", `{"Spec": {"Ports": [{"Internal": 70000}]}}`, `[[[[[[[[[[`,
	} {
		f.Add(uint8(0), []byte(seed))
	}
	ts := startServer(f, nil, store.NewMemory(), Config{})
	routes := []struct{ method, path string }{
		{"POST", api.PathLeases}, {"POST", api.PathContainers}, {"POST", api.PathContainerRead}, {"POST", api.PathContainerPlanRs},
		{"POST", api.PathContainerResize}, {"POST", api.PathContainerReconf}, {"POST", api.PathContainerStart}, {"POST", api.PathContainerStop}, {"POST", api.PathContainerDelete},
		{"PUT", api.PoolPath("p")}, {"POST", api.PoolPlanPath("p")},
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		rt := routes[int(route)%len(routes)]
		r := ts.call(t, rt.method, rt.path, adminToken, newKey(), body)
		if r.status == http.StatusInternalServerError && r.errorCode() == api.CodeInternal {
			t.Fatalf("%s %s with %q: %s", rt.method, rt.path, body, r)
		}
		if !json.Valid(body) && r.status != http.StatusBadRequest {
			t.Fatalf("%s %s with invalid JSON %q: %s, want 400", rt.method, rt.path, body, r)
		}
		if r.status < 400 && r.status != -1 {
			return
		}
		if r.errorCode() == "" {
			t.Fatalf("%s %s with %q: error without a code: %s", rt.method, rt.path, body, r)
		}
	})
}
