package provider

import (
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/types"
)

func TestParseMemory(t *testing.T) {
	good := map[string]int64{
		"128MiB": 128 << 20, "256m": 256 << 20, "1.5GiB": 3 << 29, "64GiB": 64 << 30, "4096B": 4096, "4096b": 4096, " 2g ": 2 << 30, "1PiB": 1 << 50,
	}
	for in, want := range good {
		if got, err := parseMemory(in); err != nil || got != want {
			t.Errorf("parseMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"lots", "", "0", "0MiB", "-1GiB", "12 parsecs", "1.5XB", "512", "1.5", "9999999TiB", "1025TiB", "99999999999999999999999p"} {
		if got, err := parseMemory(in); err == nil {
			t.Errorf("parseMemory(%q) = %d, want an error", in, got)
		}
	}
}

func TestFormatMemoryRoundTrips(t *testing.T) {
	cases := map[int64]string{
		128 << 20: "128MiB", 1 << 30: "1GiB", 3 << 29: "1536MiB", 2 << 40: "2TiB", 1536: "1536B", 100000000: "100000000B", 4 << 10: "4KiB",
	}
	for in, want := range cases {
		got := formatMemory(in)
		if got != want {
			t.Errorf("formatMemory(%d) = %q, want %q", in, got, want)
		}
		if back, err := parseMemory(got); err != nil || back != in {
			t.Errorf("parseMemory(formatMemory(%d)) = %d, %v", in, back, err)
		}
	}
}

func TestMemoryValueKeepsSpelling(t *testing.T) {
	if got := memoryValue(types.StringValue("0.25GiB"), 256<<20); got.ValueString() != "0.25GiB" {
		t.Errorf("equal bytes: got %q, want the prior spelling", got.ValueString())
	}
	if got := memoryValue(types.StringValue("0.25GiB"), 512<<20); got.ValueString() != "512MiB" {
		t.Errorf("changed bytes: got %q, want 512MiB", got.ValueString())
	}
	if got := memoryValue(types.StringNull(), 128<<20); got.ValueString() != "128MiB" {
		t.Errorf("no prior: got %q, want 128MiB", got.ValueString())
	}
}

func TestCPUValue(t *testing.T) {
	if got := milliCPU(0.1); got != 100 {
		t.Errorf("milliCPU(0.1) = %d", got)
	}
	if got := cpuValue(types.Float64Value(0.2504), 250); got.ValueFloat64() != 0.2504 {
		t.Errorf("same millicores: got %v, want the prior number", got.ValueFloat64())
	}
	if got := cpuValue(types.Float64Value(0.25), 1500); got.ValueFloat64() != 1.5 {
		t.Errorf("changed: got %v, want 1.5", got.ValueFloat64())
	}
}

func TestParsePortRange(t *testing.T) {
	if lo, hi, err := parsePortRange("30000-32767"); err != nil || lo != 30000 || hi != 32767 {
		t.Errorf("got %d-%d, %v", lo, hi, err)
	}
	for _, in := range []string{"", "30000", "a-b", "0-10", "10-70000", "200-100", "1-2-3"} {
		if _, _, err := parsePortRange(in); err == nil {
			t.Errorf("parsePortRange(%q): want an error", in)
		}
	}
}

func TestParseDuration(t *testing.T) {
	if d, err := parseDuration(types.StringNull(), 7); err != nil || d != 7 {
		t.Errorf("null: got %v, %v; want the fallback", d, err)
	}
	for _, in := range []string{"ten", "-1s", "5"} {
		if _, err := parseDuration(types.StringValue(in), 0); err == nil {
			t.Errorf("parseDuration(%q): want an error", in)
		}
	}
}
