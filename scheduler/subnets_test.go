package scheduler

import (
	"net/netip"
	"strings"
	"testing"
)

func TestAssignSlicesKeepsCurrentAndFillsTheLowestFree(t *testing.T) {
	subnet := netip.MustParsePrefix("10.20.0.0/16")
	current := map[string]netip.Prefix{"node2": netip.MustParsePrefix("10.20.0.0/20")}
	got, err := AssignSlices(subnet, 20, []string{"node3", "node1", "node2"}, current)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"node1": "10.20.16.0/20", "node2": "10.20.0.0/20", "node3": "10.20.32.0/20"}
	for host, slice := range want {
		if got[host].String() != slice {
			t.Errorf("%s got %s, want %s", host, got[host], slice)
		}
	}
	if owner := SliceOwner(got, netip.MustParseAddr("10.20.40.7")); owner != "node3" {
		t.Errorf("owner of 10.20.40.7 = %q, want node3", owner)
	}
	if owner := SliceOwner(got, netip.MustParseAddr("10.20.200.7")); owner != "" {
		t.Errorf("owner of an address in no slice = %q, want none", owner)
	}
}

func TestAssignSlicesRefusesMoreHostsThanSlices(t *testing.T) {
	_, err := AssignSlices(netip.MustParsePrefix("10.0.0.0/24"), 25, []string{"a", "b", "c"}, nil)
	if err == nil || !strings.Contains(err.Error(), "room for 2 host slices") {
		t.Fatalf("3 hosts in 2 slices: %v", err)
	}
}

func TestParseSubnet(t *testing.T) {
	for text, want := range map[string]string{
		"10.20.0.0/16": "",
		"10.20.0.1/16": "host bits set",
		"10.20.0.0":    "not a CIDR",
		"fd00::/64":    "not an IPv4",
		"10.0.0.0/31":  "too small",
	} {
		_, err := ParseSubnet(text)
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("ParseSubnet(%q) = %v, want %q", text, err, want)
		}
	}
	if gw := DefaultGateway(netip.MustParsePrefix("10.20.0.0/16")); gw.String() != "10.20.0.1" {
		t.Errorf("default gateway %s", gw)
	}
}
