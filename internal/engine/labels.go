package engine

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Labels on every Berth container. The engines are the source of truth for
// what is committed, so these carry enough to rebuild the ledger.
const (
	LabelPool          = "sh.berth.pool"
	LabelName          = "sh.berth.name"
	LabelReservation   = "sh.berth.reservation"
	LabelLease         = "sh.berth.lease"  // the berthd lease a create bound, when it had one
	LabelCPU           = "sh.berth.cpu"    // millicores
	LabelMemory        = "sh.berth.memory" // bytes
	LabelPorts         = "sh.berth.ports"  // see FormatPorts
	LabelSpreadGroup   = "sh.berth.spread-group"
	LabelMaxPerHost    = "sh.berth.max-per-host"
	LabelConstraints   = "sh.berth.constraints" // JSON array
	LabelCommand       = "sh.berth.command"     // JSON array, only when set
	LabelEnvKeys       = "sh.berth.env-keys"    // JSON array of the keys Berth set
	LabelOptions       = "sh.berth.options"     // ContainerOptions as JSON
	LabelImage         = "sh.berth.image"       // the image as configured, when it runs by digest
	LabelGPUs          = "sh.berth.gpus"        // JSON array of the GPU ids the container holds
	LabelPrefix        = "sh.berth."            // reserved: user labels may not use it
	LabelPoolRecord    = "sh.berth.pool-record" // on pool record volumes: the pool name
	LabelRecord        = "sh.berth.record"      // on pool record volumes: the record as JSON
	LabelRecordVersion = "sh.berth.record-generation"
)

// FormatPorts renders bindings as "internal:external/protocol" joined by
// commas, e.g. "8080:30001/tcp,53:30002/udp", with "@ip" after a binding
// to one host interface ("80:30003/tcp@127.0.0.1"). An empty protocol
// means tcp.
func FormatPorts(ports []PortBinding) string {
	parts := make([]string, len(ports))
	for i, p := range ports {
		proto := p.Protocol
		if proto == "" {
			proto = "tcp"
		}
		parts[i] = fmt.Sprintf("%d:%d/%s", p.Internal, p.External, proto)
		if p.IP != "" {
			parts[i] += "@" + p.IP
		}
	}
	return strings.Join(parts, ",")
}

// ParsePorts reverses FormatPorts. A missing protocol means tcp.
func ParsePorts(s string) ([]PortBinding, error) {
	if s == "" {
		return nil, nil
	}
	entries := strings.Split(s, ",")
	ports := make([]PortBinding, 0, len(entries))
	for _, entry := range entries {
		p, err := parsePort(entry)
		if err != nil {
			return nil, fmt.Errorf("ports label entry %q: %w (want internal:external/protocol)", entry, err)
		}
		ports = append(ports, p)
	}
	return ports, nil
}

func parsePort(entry string) (PortBinding, error) {
	entry, ip, _ := strings.Cut(entry, "@")
	p, err := parseMapping(entry)
	p.IP = ip
	return p, err
}

func parseMapping(entry string) (PortBinding, error) {
	mapping, proto, found := strings.Cut(entry, "/")
	if !found {
		proto = "tcp"
	}
	switch proto {
	case "tcp", "udp", "sctp":
	default:
		return PortBinding{}, fmt.Errorf("unknown protocol %q", proto)
	}
	internalText, externalText, found := strings.Cut(mapping, ":")
	if !found {
		return PortBinding{}, fmt.Errorf("missing ':'")
	}
	internal, err := parsePortNumber(internalText, 1)
	if err != nil {
		return PortBinding{}, fmt.Errorf("internal port: %w", err)
	}
	external, err := parsePortNumber(externalText, 0)
	if err != nil {
		return PortBinding{}, fmt.Errorf("external port: %w", err)
	}
	return PortBinding{Internal: internal, External: external, Protocol: proto}, nil
}

func parsePortNumber(s string, lowest int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < lowest || n > 65535 {
		return 0, fmt.Errorf("%q is not a port number", s)
	}
	return n, nil
}

// specLabels are the labels a container is created with: the user's, then
// Berth's, which win (the provider refuses user labels under LabelPrefix).
func specLabels(spec ContainerSpec) map[string]string {
	labels := make(map[string]string, len(spec.Options.Labels)+8)
	for k, v := range spec.Options.Labels {
		labels[k] = v
	}
	labels[LabelPool] = spec.Pool
	labels[LabelName] = spec.Name
	labels[LabelReservation] = spec.ReservationID
	if spec.Lease != "" {
		labels[LabelLease] = spec.Lease
	}
	labels[LabelCPU] = strconv.FormatInt(spec.MilliCPU, 10)
	labels[LabelMemory] = strconv.FormatInt(spec.MemoryBytes, 10)
	if !reflect.ValueOf(spec.Options).IsZero() {
		labels[LabelOptions] = mustJSON(spec.Options)
	}
	if spec.RepoDigest != "" {
		labels[LabelImage] = spec.Image
	}
	if len(spec.Ports) > 0 {
		labels[LabelPorts] = FormatPorts(spec.Ports)
	}
	if spec.SpreadGroup != "" {
		labels[LabelSpreadGroup] = spec.SpreadGroup
	}
	if spec.MaxPerHost > 0 {
		labels[LabelMaxPerHost] = strconv.Itoa(spec.MaxPerHost)
	}
	if len(spec.Constraints) > 0 {
		labels[LabelConstraints] = mustJSON(spec.Constraints)
	}
	if len(spec.Command) > 0 {
		labels[LabelCommand] = mustJSON(spec.Command)
	}
	if len(spec.GPUIDs) > 0 {
		labels[LabelGPUs] = mustJSON(spec.GPUIDs)
	}
	if len(spec.Env) > 0 {
		keys := make([]string, 0, len(spec.Env))
		for k := range spec.Env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		labels[LabelEnvKeys] = mustJSON(keys)
	}
	return labels
}

// mustJSON encodes string slices and ContainerOptions (strings, numbers and
// booleans only), which cannot fail to marshal.
func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// decodeLabels fills in what a container's labels say about it. A malformed
// Berth label is an error: guessing would miscount an engine's capacity.
func decodeLabels(c *Container, labels map[string]string) error {
	c.Pool = labels[LabelPool]
	c.Name = labels[LabelName]
	c.ReservationID = labels[LabelReservation]
	c.Lease = labels[LabelLease]
	c.SpreadGroup = labels[LabelSpreadGroup]
	if configured := labels[LabelImage]; configured != "" {
		// Docker knows the image by the digest it was created with.
		c.RepoDigest, c.Image = c.Image, configured
	}
	var err error
	if c.MilliCPU, err = int64Label(labels, LabelCPU); err != nil {
		return err
	}
	if c.MemoryBytes, err = int64Label(labels, LabelMemory); err != nil {
		return err
	}
	maxPerHost, err := int64Label(labels, LabelMaxPerHost)
	if err != nil {
		return err
	}
	c.MaxPerHost = int(maxPerHost)
	if c.Ports, err = ParsePorts(labels[LabelPorts]); err != nil {
		return fmt.Errorf("label %s: %w", LabelPorts, err)
	}
	if c.Constraints, err = stringsLabel(labels, LabelConstraints); err != nil {
		return err
	}
	if c.GPUIDs, err = stringsLabel(labels, LabelGPUs); err != nil {
		return err
	}
	return nil
}

func int64Label(labels map[string]string, key string) (int64, error) {
	text, ok := labels[key]
	if !ok {
		return 0, nil
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("label %s=%q is not a non-negative integer", key, text)
	}
	return n, nil
}

func stringsLabel(labels map[string]string, key string) ([]string, error) {
	text, ok := labels[key]
	if !ok {
		return nil, nil
	}
	var values []string
	if err := json.Unmarshal([]byte(text), &values); err != nil {
		return nil, fmt.Errorf("label %s is not a JSON list of strings: %w", key, err)
	}
	return values, nil
}

// optionsLabel reads LabelOptions; a container made before it existed has
// no options.
func optionsLabel(labels map[string]string) (ContainerOptions, error) {
	var options ContainerOptions
	text, ok := labels[LabelOptions]
	if !ok {
		return options, nil
	}
	if err := json.Unmarshal([]byte(text), &options); err != nil {
		return options, fmt.Errorf("label %s is not valid JSON: %w", LabelOptions, err)
	}
	return options, nil
}
