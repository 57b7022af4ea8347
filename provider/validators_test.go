package provider

import (
	"context"
	"slices"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

type portArgs struct {
	internal, external int64
	protocol           string // "" for null
}

func portList(t *testing.T, ports ...portArgs) types.List {
	t.Helper()
	elems := make([]attr.Value, 0, len(ports))
	for _, p := range ports {
		protocol := types.StringNull()
		if p.protocol != "" {
			protocol = types.StringValue(p.protocol)
		}
		obj, diags := types.ObjectValue(portObjectType.AttrTypes, map[string]attr.Value{
			"internal": types.Int64Value(p.internal),
			"external": types.Int64Value(p.external),
			"protocol": protocol,
			"ip":       types.StringNull(),
		})
		if diags.HasError() {
			t.Fatal(diags)
		}
		elems = append(elems, obj)
	}
	list, diags := types.ListValue(portObjectType, elems)
	if diags.HasError() {
		t.Fatal(diags)
	}
	return list
}

func TestUniqueExternalPorts(t *testing.T) {
	cases := map[string]struct {
		ports   types.List
		wantErr bool
	}{
		"zeros repeat":         {portList(t, portArgs{80, 0, ""}, portArgs{81, 0, ""}), false},
		"tcp and udp":          {portList(t, portArgs{53, 5353, "tcp"}, portArgs{53, 5353, "udp"}), false},
		"default tcp conflict": {portList(t, portArgs{80, 8080, ""}, portArgs{81, 8080, "tcp"}), true},
		"null list":            {types.ListNull(portObjectType), false},
	}
	for name, tc := range cases {
		resp := &validator.ListResponse{}
		uniqueExternalPorts{}.ValidateList(context.Background(), validator.ListRequest{Path: path.Root("ports"), ConfigValue: tc.ports}, resp)
		if resp.Diagnostics.HasError() != tc.wantErr {
			t.Errorf("%s: diagnostics %v, want error %v", name, resp.Diagnostics, tc.wantErr)
		}
	}
}

func TestStringChecks(t *testing.T) {
	cases := []struct {
		check validator.String
		good  []string
		bad   []string
	}{
		{memoryValidator(), []string{"256MiB", "1g", "512B"}, []string{"lots", "0", "512", "9999999TiB"}},
		{durationValidator(), []string{"10s", "1m30s", "0s"}, []string{"10", "-1s"}},
		{portRangeValidator(), []string{"30000-32767", "80-80"}, []string{"80", "9-1"}},
		{constraintValidator(), []string{"zone != c", "~disk == ssd", "gpu", "zone in [a, b]"}, []string{"zone <> a", "== a"}},
	}
	for _, tc := range cases {
		for _, v := range append(tc.good, tc.bad...) {
			resp := &validator.StringResponse{}
			tc.check.ValidateString(context.Background(), validator.StringRequest{Path: path.Root("x"), ConfigValue: types.StringValue(v)}, resp)
			wantErr := !slices.Contains(tc.good, v)
			if resp.Diagnostics.HasError() != wantErr {
				t.Errorf("%s(%q): diagnostics %v, want error %v", tc.check.Description(context.Background()), v, resp.Diagnostics, wantErr)
			}
		}
		resp := &validator.StringResponse{}
		tc.check.ValidateString(context.Background(), validator.StringRequest{ConfigValue: types.StringUnknown()}, resp)
		if resp.Diagnostics.HasError() {
			t.Errorf("unknown values must pass: %v", resp.Diagnostics)
		}
	}
}

func TestCPUCheck(t *testing.T) {
	cases := map[float64]bool{0.01: false, 0.25: false, 64: false, maxCPU: false, 0: true, 0.009: true, -1: true, maxCPU + 1: true, 1e30: true}
	for cpu, wantErr := range cases {
		resp := &validator.Float64Response{}
		cpuCheck{}.ValidateFloat64(context.Background(), validator.Float64Request{Path: path.Root("cpu"), ConfigValue: types.Float64Value(cpu)}, resp)
		if resp.Diagnostics.HasError() != wantErr {
			t.Errorf("cpu %g: diagnostics %v, want error %v", cpu, resp.Diagnostics, wantErr)
		}
	}
	resp := &validator.Float64Response{}
	cpuCheck{}.ValidateFloat64(context.Background(), validator.Float64Request{ConfigValue: types.Float64Unknown()}, resp)
	if resp.Diagnostics.HasError() {
		t.Errorf("unknown values must pass: %v", resp.Diagnostics)
	}
}
