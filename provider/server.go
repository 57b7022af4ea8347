package provider

import (
	"bytes"
	"context"
	"reflect"
	"sync"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/defaults"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// NewServer serves the provider over protocol 6, answering the plans,
// refreshes and state upgrades of containers itself (see fastPaths).
func NewServer(p func() provider.Provider) func() (tfprotov6.ProviderServer, error) {
	return func() (tfprotov6.ProviderServer, error) {
		prov := p()
		inner, err := providerserver.NewProtocol6WithError(prov)()
		if err != nil {
			return nil, err
		}
		fast := withFastPaths(inner)
		if b, ok := prov.(*BerthProvider); ok {
			fast.configured = b.configured.Load
		}
		return fast, nil
	}
}

// fastPaths answers three calls for berth_container without the
// framework, where the framework's walks of the whole resource value
// (~60 attributes) change nothing: the plan of an unchanged container, its
// refresh, and the upgrade of its state of the current version. Anything
// else goes to the framework; each method says when it answers itself.
type fastPaths struct {
	tfprotov6.ProviderServer

	// configured is what the provider's Configure handed to resources (nil
	// until then, or when the provider is not a *BerthProvider).
	configured func() *providerData

	once   sync.Once
	schema schema.Schema
	typ    tftypes.Type
}

func withFastPaths(inner tfprotov6.ProviderServer) *fastPaths {
	return &fastPaths{ProviderServer: inner}
}

// containerTypeName is berth_container's type name.
const containerTypeName = "berth_container"

// UpgradeResourceState passes berth_container's state of the current
// schema version through as the framework does (JSON in, attributes the
// schema no longer has dropped), without the framework's walk of the
// whole value that follows it, which only matters for list and set blocks
// (berth_container has none). That walk was 18% of the provider's CPU in a
// refresh plan of 300 containers.
func (s *fastPaths) UpgradeResourceState(ctx context.Context, req *tfprotov6.UpgradeResourceStateRequest) (*tfprotov6.UpgradeResourceStateResponse, error) {
	if req.TypeName == containerTypeName && req.RawState != nil && req.RawState.JSON != nil {
		s.loadSchema(ctx)
		if req.Version == s.schema.Version {
			raw, err := req.RawState.UnmarshalWithOpts(s.typ, tfprotov6.UnmarshalOpts{
				ValueFromJSONOpts: tftypes.ValueFromJSONOpts{IgnoreUndefinedAttributes: true},
			})
			if err == nil {
				if upgraded, err := tfprotov6.NewDynamicValue(s.typ, raw); err == nil {
					return &tfprotov6.UpgradeResourceStateResponse{UpgradedState: &upgraded}, nil
				}
			}
		}
	}
	return s.ProviderServer.UpgradeResourceState(ctx, req) // and its diagnostics for state it cannot read
}

// ReadResource refreshes a berth_container by calling its Read directly.
// The framework's ReadResource adds, after Read, walks of the whole value
// that change nothing for berth_container: semantic equality (it has no
// custom types), nulling write-only attributes (it has none), and copies;
// with ~60 attributes they were a third of the provider's CPU in a refresh
// plan of 300 containers. A container with private data (a replacement,
// a leftover), or a provider not configured yet, goes to the framework.
// TestFastReadsAnswerAsTheFramework holds the two to the same answer.
func (s *fastPaths) ReadResource(ctx context.Context, req *tfprotov6.ReadResourceRequest) (*tfprotov6.ReadResourceResponse, error) {
	var data *providerData
	if s.configured != nil {
		data = s.configured()
	}
	if req.TypeName != containerTypeName || len(req.Private) > 0 || req.CurrentState == nil || data == nil {
		return s.ProviderServer.ReadResource(ctx, req)
	}
	s.loadSchema(ctx)
	current, err := req.CurrentState.Unmarshal(s.typ)
	if err != nil || current.IsNull() {
		return s.ProviderServer.ReadResource(ctx, req) // and its diagnostics
	}
	state := tfsdk.State{Schema: s.schema, Raw: current}
	resp := resource.ReadResponse{State: state}
	(&ContainerResource{data: data}).Read(ctx, resource.ReadRequest{State: state}, &resp)
	out := &tfprotov6.ReadResourceResponse{Diagnostics: protoDiagnostics(ctx, resp.Diagnostics), NewState: req.CurrentState}
	if resp.Diagnostics.HasError() || resp.State.Raw.Equal(current) {
		return out, nil // on error Terraform keeps its state, as with the framework
	}
	newState, err := tfprotov6.NewDynamicValue(s.typ, resp.State.Raw)
	if err != nil {
		return s.ProviderServer.ReadResource(ctx, req) // which reports it
	}
	out.NewState = &newState
	return out, nil
}

// protoDiagnostics converts diagnostics for the wire, as the framework does.
func protoDiagnostics(ctx context.Context, diags diag.Diagnostics) []*tfprotov6.Diagnostic {
	var out []*tfprotov6.Diagnostic
	for _, d := range diags {
		pd := &tfprotov6.Diagnostic{Severity: tfprotov6.DiagnosticSeverityWarning, Summary: d.Summary(), Detail: d.Detail()}
		if d.Severity() == diag.SeverityError {
			pd.Severity = tfprotov6.DiagnosticSeverityError
		}
		if withPath, ok := d.(diag.DiagnosticWithPath); ok {
			pd.Attribute = attributePath(ctx, withPath.Path())
		}
		out = append(out, pd)
	}
	return out
}

// attributePath is p as Terraform's wire format spells it.
func attributePath(ctx context.Context, p path.Path) *tftypes.AttributePath {
	out := tftypes.NewAttributePath()
	for _, step := range p.Steps() {
		switch step := step.(type) {
		case path.PathStepAttributeName:
			out = out.WithAttributeName(string(step))
		case path.PathStepElementKeyInt:
			out = out.WithElementKeyInt(int(step))
		case path.PathStepElementKeyString:
			out = out.WithElementKeyString(string(step))
		case path.PathStepElementKeyValue:
			if v, err := step.ToTerraformValue(ctx); err == nil {
				out = out.WithElementKeyValue(v)
			}
		}
	}
	return out
}

// PlanResourceChange answers the plan of a berth_container that nothing
// changes. Most containers of a plan are unchanged, and the framework's
// plan walk rewrites the whole resource once per attribute: that walk was
// half of the provider's CPU in a plan refreshing 300 containers. The
// answer is the one the framework gives (TestFastPlansAnswerAsTheFramework):
// when Terraform's proposed state is the prior state byte for byte and
// every defaulted attribute left unset holds its default, no default, plan
// modifier or ModifyPlan changes anything (ModifyPlan returns at once for
// an unchanged container), so the plan is the prior state, with its
// private data.
func (s *fastPaths) PlanResourceChange(ctx context.Context, req *tfprotov6.PlanResourceChangeRequest) (*tfprotov6.PlanResourceChangeResponse, error) {
	if req.TypeName == containerTypeName && s.unchanged(ctx, req) {
		return &tfprotov6.PlanResourceChangeResponse{
			PlannedState:   req.ProposedNewState,
			PlannedPrivate: req.PriorPrivate,
		}, nil
	}
	return s.ProviderServer.PlanResourceChange(ctx, req)
}

// unchanged reports whether the framework would plan no change at all.
func (s *fastPaths) unchanged(ctx context.Context, req *tfprotov6.PlanResourceChangeRequest) bool {
	prior, proposed := req.PriorState, req.ProposedNewState
	if prior == nil || proposed == nil || len(prior.MsgPack) == 0 || !bytes.Equal(prior.MsgPack, proposed.MsgPack) {
		return false // a create, a destroy, a change, or JSON we need not handle
	}
	s.loadSchema(ctx)
	if req.Config == nil {
		return false
	}
	config, err := req.Config.Unmarshal(s.typ)
	if err != nil {
		return false
	}
	state, err := prior.Unmarshal(s.typ)
	if err != nil || state.IsNull() {
		return false
	}
	return defaultsHold(ctx, s.schema.Attributes, config, state)
}

// loadSchema reads berth_container's schema once.
func (s *fastPaths) loadSchema(ctx context.Context) {
	s.once.Do(func() {
		var resp resource.SchemaResponse
		NewContainerResource().Schema(ctx, resource.SchemaRequest{}, &resp)
		s.schema, s.typ = resp.Schema, resp.Schema.Type().TerraformType(ctx)
	})
}

// defaultsHold reports whether every attribute with a default that config
// leaves null holds that default in state, in nested attributes too.
func defaultsHold(ctx context.Context, attrs map[string]schema.Attribute, config, state tftypes.Value) bool {
	if config.IsNull() || state.IsNull() {
		return config.IsNull() == state.IsNull()
	}
	var configAttrs, stateAttrs map[string]tftypes.Value
	if config.As(&configAttrs) != nil || state.As(&stateAttrs) != nil {
		return false
	}
	for name, attr := range attrs {
		c, s := configAttrs[name], stateAttrs[name]
		if !c.IsKnown() || !s.IsKnown() {
			return false
		}
		if d := defaultOf(attr); d != nil && c.IsNull() && !holds(ctx, s, d) {
			return false
		}
		var nested map[string]schema.Attribute
		var list bool
		switch a := attr.(type) {
		case schema.ListNestedAttribute:
			nested, list = a.NestedObject.Attributes, true
		case schema.SingleNestedAttribute:
			nested = a.Attributes
		case schema.SetNestedAttribute, schema.MapNestedAttribute:
			if !c.IsNull() {
				return false // elements not walked: the framework plans it
			}
		}
		if nested == nil || c.IsNull() {
			continue
		}
		if !list {
			if !defaultsHold(ctx, nested, c, s) {
				return false
			}
			continue
		}
		var configElems, stateElems []tftypes.Value
		if c.As(&configElems) != nil || s.As(&stateElems) != nil || len(configElems) != len(stateElems) {
			return false
		}
		for i := range configElems {
			if !defaultsHold(ctx, nested, configElems[i], stateElems[i]) {
				return false
			}
		}
	}
	return true
}

// defaultOf is the attribute's Default (every schema attribute kind has
// that field), or nil.
func defaultOf(attr schema.Attribute) any {
	d := reflect.ValueOf(attr).FieldByName("Default")
	if !d.IsValid() || d.IsNil() {
		return nil
	}
	return d.Interface()
}

// holds reports whether the state value is the default d; a kind of
// default it does not know (list, map, object…) answers false.
func holds(ctx context.Context, s tftypes.Value, d any) bool {
	var want tftypes.Value
	var err error
	switch d := d.(type) {
	case defaults.String:
		var resp defaults.StringResponse
		d.DefaultString(ctx, defaults.StringRequest{}, &resp)
		want, err = resp.PlanValue.ToTerraformValue(ctx)
	case defaults.Int64:
		var resp defaults.Int64Response
		d.DefaultInt64(ctx, defaults.Int64Request{}, &resp)
		want, err = resp.PlanValue.ToTerraformValue(ctx)
	case defaults.Float64:
		var resp defaults.Float64Response
		d.DefaultFloat64(ctx, defaults.Float64Request{}, &resp)
		want, err = resp.PlanValue.ToTerraformValue(ctx)
	case defaults.Bool:
		var resp defaults.BoolResponse
		d.DefaultBool(ctx, defaults.BoolRequest{}, &resp)
		want, err = resp.PlanValue.ToTerraformValue(ctx)
	default:
		return false
	}
	return err == nil && want.Equal(s)
}
