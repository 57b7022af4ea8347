package provider

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
	tfresource "github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// TestFastPlansAnswerAsTheFramework plans containers through the framework
// and through fastPaths and requires the same answer, and requires the fast
// path for the unchanged container (else it would be dead weight).
func TestFastPlansAnswerAsTheFramework(t *testing.T) {
	ctx := context.Background()
	framework, err := providerserver.NewProtocol6WithError(New("test")())()
	if err != nil {
		t.Fatal(err)
	}
	fast := withFastPaths(framework)
	var sresp resource.SchemaResponse
	NewContainerResource().Schema(ctx, resource.SchemaRequest{}, &sresp)
	sch := sresp.Schema
	typ, ok := sch.Type().TerraformType(ctx).(tftypes.Object)
	if !ok {
		t.Fatal("berth_container's type is not an object")
	}

	str := func(s string) tftypes.Value { return tftypes.NewValue(tftypes.String, s) }
	portList, ok := typ.AttributeTypes["ports"].(tftypes.List)
	if !ok {
		t.Fatal("ports is not a list")
	}
	portType, ok := portList.ElementType.(tftypes.Object)
	if !ok {
		t.Fatal("ports' elements are not objects")
	}
	port := func(internal, external int64, withExternal bool) tftypes.Value {
		v := map[string]tftypes.Value{"internal": tftypes.NewValue(tftypes.Number, internal)}
		if withExternal {
			v["external"] = tftypes.NewValue(tftypes.Number, external)
			v["protocol"] = str("tcp")
		}
		return nullFilled(portType, v)
	}
	ports := func(p ...tftypes.Value) tftypes.Value {
		return tftypes.NewValue(typ.AttributeTypes["ports"], p)
	}
	config := map[string]tftypes.Value{"name": str("web-0"), "pool": str("dc1"), "image": str("nginx:1.27")}
	state := map[string]tftypes.Value{
		"id": str("dc1/web-0"), "name": str("web-0"), "pool": str("dc1"), "image": str("nginx:1.27"), "host": str("e1"),
		"cpu": tftypes.NewValue(tftypes.Number, defaultCPU), "memory": str(defaultMemory), "restart": str(defaultRestart),
		"running": tftypes.NewValue(tftypes.Bool, true), "stop_timeout": str(defaultStopTimeout),
		"privileged": tftypes.NewValue(tftypes.Bool, false), "read_only": tftypes.NewValue(tftypes.Bool, false),
		"init": tftypes.NewValue(tftypes.Bool, false), "ip_address": str("172.17.0.2"),
	}
	with := func(m map[string]tftypes.Value, k string, v tftypes.Value) map[string]tftypes.Value {
		out := map[string]tftypes.Value{k: v}
		for key, val := range m {
			if key != k {
				out[key] = val
			}
		}
		return out
	}
	cases := []struct {
		name          string
		config, state map[string]tftypes.Value
		wantFast      bool
	}{
		{"unchanged", config, state, true},
		{"unchanged with ports", with(config, "ports", ports(port(80, 0, false))),
			with(state, "ports", ports(port(80, 0, true))), true},
		{"stopped, running defaults to true", config, with(state, "running", tftypes.NewValue(tftypes.Bool, false)), false},
		{"picked port kept against the default 0", with(config, "ports", ports(port(80, 0, false))),
			with(state, "ports", ports(port(80, 36001, true))), false},
		{"image changed", with(config, "image", str("nginx:1.28")), state, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, prior := nullFilled(typ, tc.config), nullFilled(typ, tc.state)
			req := &tfprotov6.PlanResourceChangeRequest{
				TypeName:         containerTypeName,
				Config:           dynamic(t, typ, cfg),
				PriorState:       dynamic(t, typ, prior),
				ProposedNewState: dynamic(t, typ, proposedNew(sch.Attributes, cfg, prior)),
				PriorPrivate:     []byte(`{"replaces-volume":"e30="}`),
			}
			if got := fast.unchanged(ctx, req); got != tc.wantFast {
				t.Fatalf("fast path taken = %v, want %v", got, tc.wantFast)
			}
			want, err := framework.PlanResourceChange(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := fast.PlanResourceChange(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if len(want.Diagnostics) > 0 || len(got.Diagnostics) > 0 {
				t.Fatalf("diagnostics: framework %v, fast %v", want.Diagnostics, got.Diagnostics)
			}
			wantState, _ := want.PlannedState.Unmarshal(typ)
			gotState, _ := got.PlannedState.Unmarshal(typ)
			if !wantState.Equal(gotState) {
				t.Fatalf("planned state differs:\nframework %v\nfast      %v", wantState, gotState)
			}
			if len(want.RequiresReplace) != len(got.RequiresReplace) {
				t.Fatalf("requires replace: framework %v, fast %v", want.RequiresReplace, got.RequiresReplace)
			}
			if string(want.PlannedPrivate) != string(got.PlannedPrivate) {
				t.Fatalf("private: framework %s, fast %s", want.PlannedPrivate, got.PlannedPrivate)
			}
			if tc.name == "stopped, running defaults to true" && wantState.Equal(prior) {
				t.Fatal("the framework planned no change for a stopped container: the case proves nothing")
			}
		})
	}
}

// nullFilled is an object of type t with the given attributes, the rest null.
func nullFilled(t tftypes.Object, set map[string]tftypes.Value) tftypes.Value {
	vals := make(map[string]tftypes.Value, len(t.AttributeTypes))
	for name, at := range t.AttributeTypes {
		vals[name] = tftypes.NewValue(at, nil)
		if v, ok := set[name]; ok {
			vals[name] = v
		}
	}
	return tftypes.NewValue(t, vals)
}

// proposedNew is Terraform's proposed new state for an update: config, with
// computed attributes that config leaves null taken from prior, element by
// element in nested lists.
func proposedNew(attrs map[string]schema.Attribute, config, prior tftypes.Value) tftypes.Value {
	if config.IsNull() || prior.IsNull() {
		return config
	}
	var c, p map[string]tftypes.Value
	_ = config.As(&c)
	_ = prior.As(&p)
	out := make(map[string]tftypes.Value, len(c))
	for name, v := range c {
		attr, ok := attrs[name]
		switch {
		case !ok: // a block (timeouts): config as is
			out[name] = v
		case v.IsNull() && attr.IsComputed():
			out[name] = p[name]
		default:
			out[name] = v
			if nested, isList := attr.(schema.ListNestedAttribute); isList && !v.IsNull() && !p[name].IsNull() {
				var ce, pe []tftypes.Value
				_ = v.As(&ce)
				_ = p[name].As(&pe)
				elems := make([]tftypes.Value, len(ce))
				for i := range ce {
					elems[i] = ce[i]
					if i < len(pe) {
						elems[i] = proposedNew(nested.NestedObject.Attributes, ce[i], pe[i])
					}
				}
				out[name] = tftypes.NewValue(v.Type(), elems)
			}
		}
	}
	return tftypes.NewValue(config.Type(), out)
}

func dynamic(t *testing.T, typ tftypes.Type, v tftypes.Value) *tfprotov6.DynamicValue {
	t.Helper()
	dv, err := tfprotov6.NewDynamicValue(typ, v)
	if err != nil {
		t.Fatal(err)
	}
	return &dv
}

// TestFastUpgradeAnswersAsTheFramework upgrades container states of the
// current schema version through the framework and through fastPaths and
// requires the same state, also for JSON with an attribute the schema no
// longer has and without attributes it added.
func TestFastUpgradeAnswersAsTheFramework(t *testing.T) {
	ctx := context.Background()
	framework, err := providerserver.NewProtocol6WithError(New("test")())()
	if err != nil {
		t.Fatal(err)
	}
	inner := &countingUpgrades{ProviderServer: framework}
	fast := withFastPaths(inner)
	for _, raw := range []string{
		`{"id":"dc1/web-0","name":"web-0","pool":"dc1","image":"nginx:1.27","host":"e1","cpu":0.25,"memory":"256MiB","running":true,` +
			`"ports":[{"internal":80,"external":36001,"protocol":"tcp","ip":null}],"env":{"A":"1"},"timeouts":null}`,
		`{"id":"dc1/web-1","name":"web-1","pool":"dc1","image":"nginx:1.27","gone_attribute":"x"}`,
	} {
		req := &tfprotov6.UpgradeResourceStateRequest{TypeName: containerTypeName, Version: 0, RawState: &tfprotov6.RawState{JSON: []byte(raw)}}
		want, err := framework.UpgradeResourceState(ctx, req)
		if err != nil || len(want.Diagnostics) > 0 {
			t.Fatalf("framework: %v %v", err, want.Diagnostics)
		}
		got, err := fast.UpgradeResourceState(ctx, req)
		if err != nil || len(got.Diagnostics) > 0 {
			t.Fatalf("fast: %v %v", err, got.Diagnostics)
		}
		if string(got.UpgradedState.MsgPack) != string(want.UpgradedState.MsgPack) {
			t.Errorf("upgraded state of %s differs from the framework's", raw)
		}
	}
	if inner.calls != 0 {
		t.Errorf("the framework upgraded %d states of the current version, want none (the fast path)", inner.calls)
	}
	// Another version goes to the framework, which has no upgrader for it.
	req := &tfprotov6.UpgradeResourceStateRequest{TypeName: containerTypeName, Version: 7, RawState: &tfprotov6.RawState{JSON: []byte(`{}`)}}
	if got, err := fast.UpgradeResourceState(ctx, req); err != nil || len(got.Diagnostics) == 0 || inner.calls != 1 {
		t.Errorf("version 7: %v %v (framework calls %d), want the framework's error", err, got, inner.calls)
	}
}

// countingUpgrades counts the state upgrades that reach the framework.
type countingUpgrades struct {
	tfprotov6.ProviderServer
	calls int
}

func (c *countingUpgrades) UpgradeResourceState(ctx context.Context, req *tfprotov6.UpgradeResourceStateRequest) (*tfprotov6.UpgradeResourceStateResponse, error) {
	c.calls++
	return c.ProviderServer.UpgradeResourceState(ctx, req)
}

// TestFastReadsAnswerAsTheFramework refreshes containers through Terraform
// with every ReadResource answered both by the framework and by fastPaths,
// and requires the same answer: unchanged, drifted (stopped out of band),
// removed out of band, and on an engine that does not answer (a warning).
func TestFastReadsAnswerAsTheFramework(t *testing.T) {
	engines := newFakeEngines()
	servers := engines.factories()
	serve := servers["berth"]
	reads := &comparingReads{t: t}
	servers["berth"] = func() (tfprotov6.ProviderServer, error) {
		s, err := serve()
		if err != nil {
			return nil, err
		}
		fast, ok := s.(*fastPaths)
		if !ok {
			t.Fatalf("NewServer serves %T, not *fastPaths", s)
		}
		return &comparingServer{fastPaths: fast, reads: reads}, nil
	}
	config := poolConfig + `
resource "berth_container" "web" {
  pool  = berth_pool.dc1.id
  name  = "web-0"
  image = "nginx:1.27"
  host  = "node1"
  ports = [{ internal = 80 }]
}`
	tfresource.UnitTest(t, tfresource.TestCase{
		ProtoV6ProviderFactories: servers,
		Steps: []tfresource.TestStep{
			{Config: config},
			{Config: config, PlanOnly: true}, // unchanged
			{
				PreConfig:          engines.mutate(func(f *fakeEngines) { f.containers["dc1/web-0"].Running = false }),
				Config:             config,
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			{
				PreConfig: engines.mutate(func(f *fakeEngines) { f.unreachable["node1"] = true }),
				Config:    config,
				PlanOnly:  true, // kept as last known: running, as state has it
			},
			{
				PreConfig: engines.mutate(func(f *fakeEngines) {
					f.unreachable["node1"] = false
					delete(f.containers, "dc1/web-0")
				}),
				Config:             config,
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
		},
	})
	reads.mu.Lock()
	defer reads.mu.Unlock()
	for _, outcome := range []string{"unchanged", "changed", "warned", "removed"} {
		if reads.seen[outcome] == 0 {
			t.Errorf("no fast refresh of a container that was %s: %v", outcome, reads.seen)
		}
	}
}

// comparingServer answers ReadResource through fastPaths after checking it
// against the framework's answer.
type comparingServer struct {
	*fastPaths
	reads *comparingReads
}

type comparingReads struct {
	t    *testing.T
	mu   sync.Mutex
	seen map[string]int // fast refreshes by outcome
}

func (s *comparingServer) ReadResource(ctx context.Context, req *tfprotov6.ReadResourceRequest) (*tfprotov6.ReadResourceResponse, error) {
	t := s.reads.t
	want, err := s.ProviderServer.ReadResource(ctx, req) // the framework's
	if err != nil {
		t.Error(err)
		return want, err
	}
	got, err := s.fastPaths.ReadResource(ctx, req)
	if err != nil {
		t.Error(err)
		return got, err
	}
	if req.TypeName != containerTypeName {
		return got, nil
	}
	s.loadSchema(ctx)
	wantState, werr := want.NewState.Unmarshal(s.typ)
	gotState, gerr := got.NewState.Unmarshal(s.typ)
	current, cerr := req.CurrentState.Unmarshal(s.typ)
	if werr != nil || gerr != nil || cerr != nil {
		t.Errorf("unreadable states: %v, %v, %v", werr, gerr, cerr)
		return got, nil
	}
	if !wantState.Equal(gotState) {
		t.Errorf("refreshed state differs:\nframework %v\nfast      %v", wantState, gotState)
	}
	if fmt.Sprint(diagnosticsText(want.Diagnostics)) != fmt.Sprint(diagnosticsText(got.Diagnostics)) {
		t.Errorf("diagnostics differ:\nframework %v\nfast      %v", diagnosticsText(want.Diagnostics), diagnosticsText(got.Diagnostics))
	}
	if len(want.Private) != len(got.Private) {
		t.Errorf("private: framework %q, fast %q", want.Private, got.Private)
	}
	outcome := "unchanged"
	switch {
	case len(got.Diagnostics) > 0:
		outcome = "warned"
	case gotState.IsNull():
		outcome = "removed"
	case !gotState.Equal(current):
		outcome = "changed"
	}
	if len(req.Private) == 0 { // the fast path's case
		s.reads.mu.Lock()
		if s.reads.seen == nil {
			s.reads.seen = map[string]int{}
		}
		s.reads.seen[outcome]++
		s.reads.mu.Unlock()
	}
	return got, nil
}

func diagnosticsText(diags []*tfprotov6.Diagnostic) []string {
	var out []string
	for _, d := range diags {
		out = append(out, fmt.Sprintf("%v %q %q %v", d.Severity, d.Summary, d.Detail, d.Attribute))
	}
	return out
}
