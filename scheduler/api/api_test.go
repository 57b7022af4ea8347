package api

import (
	"encoding/json"
	"testing"

	"github.com/berthsh/terraform-provider-berth/scheduler/backend"
)

func TestFingerprintCoversPlacementOnly(t *testing.T) {
	base := backend.ContainerSpec{Pool: "dc1", Name: "web-0", Image: "a:1", Resources: backend.Resources{MilliCPU: 500, MemoryBytes: 64 << 20}}
	same := base
	same.Image, same.Env, same.Command = "b:2", map[string]string{"K": "V"}, []string{"x"}
	if Fingerprint(base) != Fingerprint(same) {
		t.Errorf("image, env and command changed the fingerprint; they place nothing")
	}
	for name, change := range map[string]func(*backend.ContainerSpec){
		"pool":        func(s *backend.ContainerSpec) { s.Pool = "dc2" },
		"name":        func(s *backend.ContainerSpec) { s.Name = "web-1" },
		"cpu":         func(s *backend.ContainerSpec) { s.Resources.MilliCPU++ },
		"ports":       func(s *backend.ContainerSpec) { s.Ports = []backend.PortSpec{{Internal: 80}} },
		"constraints": func(s *backend.ContainerSpec) { s.Constraints = []string{"zone == a"} },
		"spread":      func(s *backend.ContainerSpec) { s.SpreadGroup = "web" },
		"max":         func(s *backend.ContainerSpec) { s.MaxPerHost = 2 },
		"host":        func(s *backend.ContainerSpec) { s.Host = "node1" },
	} {
		changed := base
		change(&changed)
		if Fingerprint(changed) == Fingerprint(base) {
			t.Errorf("changing %s kept the fingerprint", name)
		}
	}
}

func TestErrorShape(t *testing.T) {
	data, err := json.Marshal(&Error{Code: CodeNoFit, Message: "no host fits"})
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != `{"code":"no_fit","message":"no host fits"}` {
		t.Errorf("error body = %s", data)
	}
}

func TestPathsMatchRoutes(t *testing.T) {
	for path, route := range map[string]string{
		PoolPath("dc 1"):     "/v1/pools/dc%201",
		PoolUsagePath("dc1"): "/v1/pools/dc1/usage",
		PoolPlanPath("dc1"):  "/v1/pools/dc1/plan",
		LeasePath("r1-2"):    "/v1/leases/r1-2",
		FindPath("dc1", "a"): "/v1/containers/find?name=a&pool=dc1",
	} {
		if path != route {
			t.Errorf("path %s, want %s", path, route)
		}
	}
}
