package provider

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/berthsh/terraform-provider-berth/scheduler"
	"github.com/berthsh/terraform-provider-berth/scheduler/client"
)

// Name rules, shared by schemas and import parsing.
var (
	// A pool name ends up in Docker labels and volume names: DNS-label-like.
	poolNameRegexp = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	// A container name follows Docker's container-name rule without dots,
	// because Berth derives the engine-side name from it.
	containerNameRegexp = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_-]{0,127}$`)
	endpointRegexp      = regexp.MustCompile(`^(unix|tcp|ssh)://.+`)
)

func poolNameValidator() validator.String {
	return stringvalidator.RegexMatches(poolNameRegexp,
		"must be 1-63 characters of lower-case letters, digits and '-', starting with a letter or digit")
}

func containerNameValidator() validator.String {
	return stringvalidator.RegexMatches(containerNameRegexp,
		"must be 1-128 characters of letters, digits, '_' and '-', starting with a letter or digit")
}

func endpointValidator() validator.String {
	return stringvalidator.RegexMatches(endpointRegexp,
		`must be unix:///path/to/docker.sock, tcp://HOST:PORT or ssh://USER@HOST`)
}

// stringCheck adapts a parse function into a validator whose error names
// the attribute (the framework adds the path) and says how to fix it.
type stringCheck struct {
	summary string // diagnostic summary, e.g. "Invalid memory size"
	hint    string // what a valid value looks like
	check   func(string) error
}

func (c stringCheck) Description(context.Context) string { return c.hint }

func (c stringCheck) MarkdownDescription(ctx context.Context) string { return c.Description(ctx) }

func (c stringCheck) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := c.check(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, c.summary,
			fmt.Sprintf("Attribute %s: %s. %s", req.Path, err, c.hint))
	}
}

func memoryValidator() validator.String {
	return stringCheck{
		summary: "Invalid memory size",
		hint:    `Use a positive size with a binary unit, e.g. "256MiB", "1.5GiB" or "64GiB".`,
		check: func(s string) error {
			_, err := parseMemory(s)
			return err
		},
	}
}

// diskValidator checks a volume space or a volume's size.
func diskValidator() validator.String {
	return stringCheck{
		summary: "Invalid disk size",
		hint:    `Use a positive size with a binary unit, e.g. "10GiB" or "500GiB".`,
		check: func(s string) error {
			_, err := parseSize(s, "disk")
			return err
		},
	}
}

// uniqueStrings refuses a list that names a value twice, saying which
// (listvalidator.UniqueValues does not name the attribute of a nested map).
type uniqueStrings struct{}

func (uniqueStrings) Description(context.Context) string { return "each value at most once" }

func (u uniqueStrings) MarkdownDescription(ctx context.Context) string { return u.Description(ctx) }

func (uniqueStrings) ValidateList(ctx context.Context, req validator.ListRequest, resp *validator.ListResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	var values []types.String
	resp.Diagnostics.Append(req.ConfigValue.ElementsAs(ctx, &values, false)...)
	seen := map[string]bool{}
	for _, v := range values {
		if !isKnown(v) {
			continue
		}
		if seen[v.ValueString()] {
			resp.Diagnostics.AddAttributeError(req.Path, "Duplicate value",
				fmt.Sprintf("Attribute %s names %q twice: list each value once.", req.Path, v.ValueString()))
			return
		}
		seen[v.ValueString()] = true
	}
}

func durationValidator() validator.String {
	return stringCheck{
		summary: "Invalid duration",
		hint:    `Use a Go duration such as "10s", "1m30s" or "500ms".`,
		check: func(s string) error {
			_, err := parseDuration(types.StringValue(s), 0)
			return err
		},
	}
}

// positiveDurationValidator is durationValidator for a bound, where zero
// would mean "fail at once".
func positiveDurationValidator() validator.String {
	return stringCheck{
		summary: "Invalid duration",
		hint:    `Use a positive Go duration such as "30s" or "2m".`,
		check: func(s string) error {
			d, err := parseDuration(types.StringValue(s), 0)
			if err == nil && d == 0 {
				err = fmt.Errorf("duration %q is not greater than zero", s)
			}
			return err
		},
	}
}

func portRangeValidator() validator.String {
	return stringCheck{
		summary: "Invalid port range",
		hint:    `Use "MIN-MAX" with 1 <= MIN <= MAX <= 65535, e.g. "30000-32767".`,
		check: func(s string) error {
			_, _, err := parsePortRange(s)
			return err
		},
	}
}

func schedulerURLValidator() validator.String {
	return stringCheck{
		summary: "Invalid scheduler_url",
		hint:    `Use berthd's URL, e.g. "https://berthd.internal:8700"; list replicas separated by commas.`,
		check: func(s string) error {
			_, err := client.ParseURLs(s)
			return err
		},
	}
}

func caPEMValidator() validator.String {
	return stringCheck{
		summary: "Invalid CA certificate",
		hint:    `Give the PEM text of the CA that signed berthd's certificate, e.g. file("berthd-ca.pem").`,
		check: func(s string) error {
			_, err := client.CertPool(s)
			return err
		},
	}
}

func leaseValidator() validator.String {
	return stringCheck{
		summary: "Invalid placement lease",
		hint:    `Use a Go duration between 1s and 168h, e.g. "30m" (the default) or "2h".`,
		check: func(s string) error {
			_, err := client.ParseLease(s)
			return err
		},
	}
}

// constraintValidator runs the scheduler's own parser at validate time, so
// a malformed constraint fails `terraform validate` with the parser's message.
func constraintValidator() validator.String {
	return stringCheck{
		summary: "Invalid constraint",
		hint: `Write "LABEL == VALUE", "LABEL != VALUE", "LABEL in [A, B]", "LABEL not in [A, B]", ` +
			`"LABEL" or "!LABEL", with a leading "~" for a preference, e.g. "zone != c".`,
		check: func(s string) error {
			_, err := scheduler.ParseConstraint(s)
			return err
		},
	}
}

// CPU bounds: below 0.01 the kernel's CFS quota (1 ms per 100 ms period)
// cannot enforce the limit; above maxCPU no machine has it, and millicores
// would overflow long before a float stops looking like a number.
const (
	minCPU = 0.01
	maxCPU = 100000
)

// cpuCheck refuses CPU amounts the kernel cannot enforce or no host has.
type cpuCheck struct{}

func (cpuCheck) Description(context.Context) string {
	return fmt.Sprintf("a CPU amount from %g to %d", minCPU, maxCPU)
}

func (c cpuCheck) MarkdownDescription(ctx context.Context) string { return c.Description(ctx) }

func (cpuCheck) ValidateFloat64(_ context.Context, req validator.Float64Request, resp *validator.Float64Response) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	switch cpu := req.ConfigValue.ValueFloat64(); {
	case math.IsNaN(cpu) || cpu < minCPU:
		resp.Diagnostics.AddAttributeError(req.Path, "CPU too small",
			fmt.Sprintf("Attribute %s: %g CPU is below %g, the smallest CPU limit the kernel enforces. Use at least %g, e.g. 0.1.", req.Path, cpu, minCPU, minCPU))
	case cpu > maxCPU:
		resp.Diagnostics.AddAttributeError(req.Path, "CPU too large",
			fmt.Sprintf("Attribute %s: %g CPU is more than any host has (at most %d). Write CPUs as a count, e.g. 2 or 0.5.", req.Path, cpu, maxCPU))
	}
}

// uniqueExternalPorts rejects two ports with the same non-zero external
// port and protocol: Docker could never bind both.
type uniqueExternalPorts struct{}

func (uniqueExternalPorts) Description(context.Context) string {
	return "non-zero external ports must be unique per protocol"
}

func (v uniqueExternalPorts) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (uniqueExternalPorts) ValidateList(_ context.Context, req validator.ListRequest, resp *validator.ListResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	seen := map[string]int{}
	for i, elem := range req.ConfigValue.Elements() {
		obj, ok := elem.(types.Object)
		if !ok || obj.IsNull() || obj.IsUnknown() {
			continue
		}
		external, ok := obj.Attributes()["external"].(types.Int64)
		if !ok || external.IsNull() || external.IsUnknown() || external.ValueInt64() == 0 {
			continue
		}
		protocol := "tcp"
		if p, ok := obj.Attributes()["protocol"].(types.String); ok {
			if p.IsUnknown() {
				continue
			}
			if !p.IsNull() {
				protocol = p.ValueString()
			}
		}
		key := fmt.Sprintf("%d/%s", external.ValueInt64(), protocol)
		if first, dup := seen[key]; dup {
			resp.Diagnostics.AddAttributeError(req.Path.AtListIndex(i).AtName("external"),
				"Duplicate external port",
				fmt.Sprintf("External port %s is already used by ports[%d]. Give each port its own external number, or 0 to let Berth pick a free one.", key, first))
			continue
		}
		seen[key] = i
	}
}

// tlsOnlyWithTCP rejects a tls block on a unix:// or ssh:// endpoint, where
// it would be silently ignored.
type tlsOnlyWithTCP struct{}

func (tlsOnlyWithTCP) Description(context.Context) string {
	return "tls may only be set with a tcp:// endpoint"
}

func (v tlsOnlyWithTCP) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (tlsOnlyWithTCP) ValidateObject(_ context.Context, req validator.ObjectRequest, resp *validator.ObjectResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	attrs := req.ConfigValue.Attributes()
	endpoint, _ := attrs["endpoint"].(types.String)
	tls, _ := attrs["tls"].(types.Object)
	if !isKnown(endpoint) || tls.IsNull() {
		return
	}
	if !strings.HasPrefix(endpoint.ValueString(), "tcp://") {
		resp.Diagnostics.AddAttributeError(req.Path.AtName("tls"), "TLS needs a tcp:// endpoint",
			fmt.Sprintf("%s: endpoint %q does not use TLS: remove tls, or use tcp://HOST:PORT for a TLS-enabled engine.", req.Path, endpoint.ValueString()))
	}
}

// isKnown reports whether a value is set and known.
func isKnown(v attr.Value) bool {
	return v != nil && !v.IsNull() && !v.IsUnknown()
}

// durationOrDefault is parseDuration for values already validated.
func durationOrDefault(v types.String, fallback time.Duration) time.Duration {
	d, err := parseDuration(v, fallback)
	if err != nil {
		return fallback
	}
	return d
}

// oneMode keeps embedded and remote mode apart: with engines the provider
// places itself, with scheduler_url berthd does, and mixing them would let
// the two race on the same engines.
type oneMode struct{}

func (oneMode) Description(context.Context) string {
	return "engines (embedded mode) and scheduler_url (remote mode) exclude each other"
}

func (v oneMode) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (oneMode) ValidateProvider(ctx context.Context, req provider.ValidateConfigRequest, resp *provider.ValidateConfigResponse) {
	var engines types.Map
	var url, timeout types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("engines"), &engines)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("scheduler_url"), &url)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("engine_timeout"), &timeout)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if engines.IsNull() {
		if !url.IsNull() && !timeout.IsNull() {
			resp.Diagnostics.AddAttributeError(path.Root("engine_timeout"), "engine_timeout needs engines",
				"engine_timeout bounds this provider's calls to its engines (embedded mode); in remote mode berthd "+
					"calls the engines and has its own deadlines. Remove engine_timeout.")
		}
		return
	}
	for _, name := range []string{"scheduler_url", "scheduler_token", "scheduler_ca_pem", "placement_lease"} {
		var v types.String
		resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root(name), &v)...)
		if v.IsNull() {
			continue
		}
		resp.Diagnostics.AddAttributeError(path.Root(name), "engines and "+name+" exclude each other",
			name+" belongs to remote mode, where berthd holds the engines and places containers; engines "+
				"is embedded mode, where this provider talks to the engines itself. Keep one: remove "+name+
				", or remove engines and let berthd (scheduler_url) place.")
	}
}
