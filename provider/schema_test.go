package provider

import (
	"context"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	dschema "github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	pschema "github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	rschema "github.com/hashicorp/terraform-plugin-framework/resource/schema"
)

// describedAttribute is what every schema attribute type offers.
type describedAttribute interface {
	GetMarkdownDescription() string
}

// requireDescriptions fails for any attribute, at any depth, without a
// MarkdownDescription: the generated docs would have holes.
func requireDescriptions[A describedAttribute](t *testing.T, prefix string, attrs map[string]A, nested func(A) map[string]A) {
	t.Helper()
	for name, attr := range attrs {
		if attr.GetMarkdownDescription() == "" {
			t.Errorf("%s%s has no MarkdownDescription", prefix, name)
		}
		if children := nested(attr); children != nil {
			requireDescriptions(t, prefix+name+".", children, nested)
		}
	}
}

func TestEveryAttributeIsDescribed(t *testing.T) {
	ctx := context.Background()

	presp := &provider.SchemaResponse{}
	New("test")().Schema(ctx, provider.SchemaRequest{}, presp)
	requireDescriptions(t, "provider.", presp.Schema.Attributes, func(a pschema.Attribute) map[string]pschema.Attribute {
		switch n := a.(type) {
		case pschema.MapNestedAttribute:
			return n.NestedObject.Attributes
		case pschema.SingleNestedAttribute:
			return n.Attributes
		}
		return nil
	})

	for _, newResource := range []func() resource.Resource{NewPoolResource, NewContainerResource} {
		r := newResource()
		meta := &resource.MetadataResponse{}
		r.Metadata(ctx, resource.MetadataRequest{ProviderTypeName: "berth"}, meta)
		resp := &resource.SchemaResponse{}
		r.Schema(ctx, resource.SchemaRequest{}, resp)
		if diags := resp.Schema.ValidateImplementation(ctx); diags.HasError() {
			t.Errorf("%s: %v", meta.TypeName, diags)
		}
		requireDescriptions(t, meta.TypeName+".", resp.Schema.Attributes, func(a rschema.Attribute) map[string]rschema.Attribute {
			switch n := a.(type) {
			case rschema.MapNestedAttribute:
				return n.NestedObject.Attributes
			case rschema.ListNestedAttribute:
				return n.NestedObject.Attributes
			case rschema.SingleNestedAttribute:
				return n.Attributes
			}
			return nil
		})
	}

	d := NewPoolDataSource()
	dresp := &datasource.SchemaResponse{}
	d.Schema(ctx, datasource.SchemaRequest{}, dresp)
	if diags := dresp.Schema.ValidateImplementation(ctx); diags.HasError() {
		t.Errorf("data source: %v", diags)
	}
	requireDescriptions(t, "data.berth_pool.", dresp.Schema.Attributes, func(a dschema.Attribute) map[string]dschema.Attribute {
		if n, ok := a.(dschema.MapNestedAttribute); ok {
			return n.NestedObject.Attributes
		}
		return nil
	})
}
