package engine

import (
	"reflect"
	"strings"
	"testing"
)

func TestPortsLabelRoundTrip(t *testing.T) {
	cases := map[string][]PortBinding{
		"":                                     nil,
		"8080:30001/tcp":                       {{Internal: 8080, External: 30001, Protocol: "tcp"}},
		"8080:30001/tcp,53:30002/udp":          {{Internal: 8080, External: 30001, Protocol: "tcp"}, {Internal: 53, External: 30002, Protocol: "udp"}},
		"9:0/sctp,65535:65535/tcp":             {{Internal: 9, External: 0, Protocol: "sctp"}, {Internal: 65535, External: 65535, Protocol: "tcp"}},
		"80:8080/tcp,80:8081/tcp":              {{Internal: 80, External: 8080, Protocol: "tcp"}, {Internal: 80, External: 8081, Protocol: "tcp"}},
		"443:30443/tcp,443:30443/udp":          {{Internal: 443, External: 30443, Protocol: "tcp"}, {Internal: 443, External: 30443, Protocol: "udp"}},
		"1:1/tcp,2:2/tcp,3:3/tcp":              {{Internal: 1, External: 1, Protocol: "tcp"}, {Internal: 2, External: 2, Protocol: "tcp"}, {Internal: 3, External: 3, Protocol: "tcp"}},
		"80:30003/tcp@127.0.0.1,53:53/udp@::1": {{Internal: 80, External: 30003, Protocol: "tcp", IP: "127.0.0.1"}, {Internal: 53, External: 53, Protocol: "udp", IP: "::1"}},
	}
	for text, ports := range cases {
		if got := FormatPorts(ports); got != text {
			t.Errorf("FormatPorts(%v) = %q, want %q", ports, got, text)
		}
		parsed, err := ParsePorts(text)
		if err != nil {
			t.Fatalf("ParsePorts(%q): %v", text, err)
		}
		if !reflect.DeepEqual(parsed, ports) {
			t.Errorf("ParsePorts(%q) = %v, want %v", text, parsed, ports)
		}
		if again := FormatPorts(parsed); again != text {
			t.Errorf("round trip of %q gave %q", text, again)
		}
	}
}

func TestFormatPortsDefaultsToTCP(t *testing.T) {
	text := FormatPorts([]PortBinding{{Internal: 80, External: 30080}})
	if text != "80:30080/tcp" {
		t.Fatalf("got %q", text)
	}
	parsed, err := ParsePorts("80:30080")
	if err != nil || !reflect.DeepEqual(parsed, []PortBinding{{Internal: 80, External: 30080, Protocol: "tcp"}}) {
		t.Fatalf("ParsePorts without protocol = %v, %v", parsed, err)
	}
}

func TestParsePortsRejectsMalformedEntries(t *testing.T) {
	for text, wantInError := range map[string]string{
		"8080":                  "missing ':'",
		"8080:30001/tc":         `unknown protocol "tc"`,
		"x:30001/tcp":           "internal port",
		"0:30001/tcp":           "internal port",
		"8080:70000/tcp":        "external port",
		"8080:-1/tcp":           "external port",
		"8080:30001/tcp,":       `entry ""`,
		"80:1/tcp,,81:2/tcp":    `entry ""`,
		"8080:30001/tcp/udp":    "unknown protocol",
		"8080:30001:30002/tcp:": "unknown protocol",
	} {
		_, err := ParsePorts(text)
		if err == nil {
			t.Errorf("ParsePorts(%q) succeeded", text)
			continue
		}
		if !strings.Contains(err.Error(), wantInError) {
			t.Errorf("ParsePorts(%q) error %q does not mention %q", text, err, wantInError)
		}
	}
}

func TestSpecLabelsDecodeBack(t *testing.T) {
	spec := ContainerSpec{
		Pool: "dc1", Name: "web-3", ReservationID: "r-42", Image: "nginx:1.27",
		Command: []string{"nginx", "-g", "daemon off;"}, Env: map[string]string{"MODE": "prod", "A": "1"},
		MilliCPU: 500, MemoryBytes: 256 << 20,
		Ports:       []PortBinding{{Internal: 80, External: 30001, Protocol: "tcp"}},
		SpreadGroup: "web", MaxPerHost: 4, Constraints: []string{"zone != c", "disk == ssd"},
	}
	labels := specLabels(spec)
	want := map[string]string{
		LabelPool: "dc1", LabelName: "web-3", LabelReservation: "r-42",
		LabelCPU: "500", LabelMemory: "268435456", LabelPorts: "80:30001/tcp",
		LabelSpreadGroup: "web", LabelMaxPerHost: "4",
		LabelConstraints: `["zone != c","disk == ssd"]`,
		LabelCommand:     `["nginx","-g","daemon off;"]`,
		LabelEnvKeys:     `["A","MODE"]`,
	}
	if !reflect.DeepEqual(labels, want) {
		t.Fatalf("labels = %v\nwant %v", labels, want)
	}
	var c Container
	if err := decodeLabels(&c, labels); err != nil {
		t.Fatal(err)
	}
	got := Container{
		Pool: c.Pool, Name: c.Name, ReservationID: c.ReservationID, MilliCPU: c.MilliCPU,
		MemoryBytes: c.MemoryBytes, Ports: c.Ports, SpreadGroup: c.SpreadGroup,
		MaxPerHost: c.MaxPerHost, Constraints: c.Constraints,
	}
	wantContainer := Container{
		Pool: "dc1", Name: "web-3", ReservationID: "r-42", MilliCPU: 500, MemoryBytes: 256 << 20,
		Ports: spec.Ports, SpreadGroup: "web", MaxPerHost: 4, Constraints: spec.Constraints,
	}
	if !reflect.DeepEqual(got, wantContainer) {
		t.Fatalf("decoded %+v\nwant %+v", got, wantContainer)
	}
}

func TestDecodeLabelsRejectsTamperedResources(t *testing.T) {
	for key, value := range map[string]string{
		LabelCPU: "half", LabelMemory: "-5", LabelMaxPerHost: "x",
		LabelPorts: "80", LabelConstraints: "zone == a",
	} {
		var c Container
		err := decodeLabels(&c, map[string]string{LabelPool: "dc1", key: value})
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("label %s=%q: error %v does not name the label", key, value, err)
		}
	}
}

func TestBerthEnvKeepsOnlyBerthKeys(t *testing.T) {
	env := berthEnv([]string{"PATH=/usr/bin", "MODE=prod", "EQ=a=b"}, []string{"EQ", "MODE"})
	if !reflect.DeepEqual(env, map[string]string{"MODE": "prod", "EQ": "a=b"}) {
		t.Fatalf("got %v", env)
	}
	if berthEnv([]string{"PATH=/usr/bin"}, nil) != nil {
		t.Fatal("no keys should give no env")
	}
}

func TestHealthFromStatus(t *testing.T) {
	for status, want := range map[string]string{
		"Up 3 minutes (healthy)":          "healthy",
		"Up 3 seconds (health: starting)": "starting",
		"Up 1 second (unhealthy)":         "unhealthy",
		"Up 2 hours":                      "",
		"Exited (1) 2 seconds ago":        "",
	} {
		if got := healthFromStatus(status); got != want {
			t.Errorf("healthFromStatus(%q) = %q, want %q", status, got, want)
		}
	}
}

// Import rebuilds settings from LabelOptions: unset and empty must come
// back as they were, and user labels sit beside Berth's, which win.
func TestOptionsLabelRoundTrip(t *testing.T) {
	options := ContainerOptions{
		Entrypoint: []string{"/app"}, DNS: []string{}, Labels: map[string]string{"team": "web", LabelPool: "forged"},
		Ulimits: []Ulimit{{Name: "nofile", Soft: 1, Hard: 2}}, ShmBytes: 64 << 20, Init: true,
	}
	labels := specLabels(ContainerSpec{Pool: "dc1", Name: "web", Options: options})
	if labels["team"] != "web" || labels[LabelPool] != "dc1" {
		t.Fatalf("user labels not merged under Berth's: %v", labels)
	}
	got, err := optionsLabel(labels)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, options) || got.DNS == nil || got.ExtraHosts != nil {
		t.Fatalf("options read back as %#v, want %#v", got, options)
	}
	if _, ok := specLabels(ContainerSpec{Pool: "dc1", Name: "web"})[LabelOptions]; ok {
		t.Error("a container without options got an options label")
	}
	if _, err := optionsLabel(map[string]string{LabelOptions: "{"}); err == nil {
		t.Error("a malformed options label was accepted")
	}
}

func TestReachAddress(t *testing.T) {
	for endpoint, want := range map[string]string{
		"unix:///var/run/docker.sock": "127.0.0.1",
		"tcp://10.0.0.12:2376":        "10.0.0.12",
		"tcp://[fd00::12]:2376":       "fd00::12",
		"ssh://ops@node3.internal":    "node3.internal",
	} {
		if got := reachAddress(Config{Endpoint: endpoint}); got != want {
			t.Errorf("address of %s = %q, want %q", endpoint, got, want)
		}
	}
	if got := reachAddress(Config{Endpoint: "tcp://10.0.0.12:2376", Address: "203.0.113.7"}); got != "203.0.113.7" {
		t.Errorf("configured address ignored: %q", got)
	}
}
