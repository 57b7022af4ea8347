package provider

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/moby/sys/signal"

	"github.com/berthsh/terraform-provider-berth/internal/engine"
)

// Validators of berth_container's docker_container settings. Each one
// catches at validate time what Docker would refuse at create, naming the
// attribute and the fix.

var (
	userRegexp       = regexp.MustCompile(`^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?$`)
	logDriverRegexp  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_./:-]*$`)
	capabilityRegexp = regexp.MustCompile(`^((?i:CAP_)?[A-Za-z_]+|ALL)$`)
	sysctlRegexp     = regexp.MustCompile(`^[A-Za-z0-9_]+([./][A-Za-z0-9_-]+)+$`)
	hostnameRegexp   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$`)
	permissionRegexp = regexp.MustCompile(`^[rwm]{1,3}$`)
)

func absolutePathValidator() validator.String {
	return stringCheck{
		summary: "Invalid path",
		hint:    `Use an absolute path, e.g. "/srv/app".`,
		check: func(s string) error {
			if !strings.HasPrefix(s, "/") {
				return fmt.Errorf("%q is not an absolute path", s)
			}
			return nil
		},
	}
}

func userValidator() validator.String {
	return stringvalidator.RegexMatches(userRegexp,
		`must be a user name or id, optionally with a group: "app", "1000" or "1000:1000"`)
}

func logDriverValidator() validator.String {
	return stringvalidator.RegexMatches(logDriverRegexp,
		`must be a Docker logging driver name such as "json-file", "local", "syslog" or "none"`)
}

func capabilityValidator() validator.String {
	return stringvalidator.RegexMatches(capabilityRegexp,
		`must be a Linux capability such as "NET_ADMIN" or "CAP_SYS_TIME", or "ALL"`)
}

func sysctlKeyValidator() validator.String {
	return stringvalidator.RegexMatches(sysctlRegexp,
		`must be a dotted kernel parameter such as "net.core.somaxconn"`)
}

func labelKeyValidator() validator.String {
	return stringCheck{
		summary: "Invalid label",
		hint:    fmt.Sprintf("Use a non-empty key outside the %q prefix, which Berth keeps for its own labels.", engine.LabelPrefix),
		check: func(s string) error {
			switch {
			case s == "":
				return fmt.Errorf("a label key is empty")
			case strings.HasPrefix(s, engine.LabelPrefix):
				return fmt.Errorf("label %q uses the reserved prefix %q", s, engine.LabelPrefix)
			}
			return nil
		},
	}
}

func extraHostValidator() validator.String {
	return stringCheck{
		summary: "Invalid extra host",
		hint:    `Write "NAME:IP", e.g. "db.internal:10.0.0.5" or "host.docker.internal:host-gateway".`,
		check: func(s string) error {
			name, ip, ok := strings.Cut(s, ":")
			if !ok || !hostnameRegexp.MatchString(name) {
				return fmt.Errorf("%q is not NAME:IP", s)
			}
			if ip == "host-gateway" {
				return nil
			}
			if _, err := netip.ParseAddr(ip); err != nil {
				return fmt.Errorf("%q: %q is not an IP address", s, ip)
			}
			return nil
		},
	}
}

func ipAddressValidator() validator.String {
	return stringCheck{
		summary: "Invalid IP address",
		hint:    `Use an IPv4 or IPv6 address, e.g. "10.0.0.2".`,
		check: func(s string) error {
			if _, err := netip.ParseAddr(s); err != nil {
				return fmt.Errorf("%q is not an IP address", s)
			}
			return nil
		},
	}
}

func domainOrIPValidator() validator.String {
	return stringCheck{
		summary: "Invalid address",
		hint:    `Use a host name or an IP address, e.g. "10.0.0.11" or "node1.internal".`,
		check: func(s string) error {
			if _, err := netip.ParseAddr(s); err == nil || hostnameRegexp.MatchString(s) {
				return nil
			}
			return fmt.Errorf("%q is neither a host name nor an IP address", s)
		},
	}
}

func domainValidator() validator.String {
	return stringvalidator.RegexMatches(hostnameRegexp, `must be a domain name such as "svc.internal"`)
}

func permissionsValidator() validator.String {
	return stringvalidator.RegexMatches(permissionRegexp,
		`must be made of r (read), w (write) and m (mknod), e.g. "rwm" or "r"`)
}

func signalValidator() validator.String {
	return stringCheck{
		summary: "Invalid stop signal",
		hint:    `Use a signal name or number, e.g. "SIGTERM", "SIGINT" or "9".`,
		check: func(s string) error {
			_, err := signal.ParseSignal(s)
			return err
		},
	}
}

func sizeValidator() validator.String {
	return stringCheck{
		summary: "Invalid size",
		hint:    `Use a positive size with a binary unit, e.g. "64MiB" or "1GiB".`,
		check: func(s string) error {
			_, err := parseMemory(s)
			return err
		},
	}
}

// ulimitsValidator checks each entry with Docker's own parser (known names,
// soft <= hard), reporting on the entry's attribute.
type ulimitsValidator struct{}

func (ulimitsValidator) Description(context.Context) string {
	return "each ulimit needs a known name and soft <= hard"
}

func (v ulimitsValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (ulimitsValidator) ValidateList(_ context.Context, req validator.ListRequest, resp *validator.ListResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	for i, elem := range req.ConfigValue.Elements() {
		obj, ok := elem.(types.Object)
		if !ok || !isKnown(obj) {
			continue
		}
		attrs := obj.Attributes()
		name, _ := attrs["name"].(types.String)
		soft, _ := attrs["soft"].(types.Int64)
		hard, _ := attrs["hard"].(types.Int64)
		if !isKnown(name) || !isKnown(soft) || !isKnown(hard) {
			continue
		}
		entry := req.Path.AtListIndex(i)
		if _, err := units.ParseUlimit(name.ValueString() + "=1"); err != nil {
			resp.Diagnostics.AddAttributeError(entry.AtName("name"), "Invalid ulimit",
				fmt.Sprintf("%s: %s. Use one of Docker's names, e.g. nofile, nproc, core, memlock, stack.", entry.AtName("name"), err))
			continue
		}
		if _, err := units.ParseUlimit(fmt.Sprintf("%s=%d:%d", name.ValueString(), soft.ValueInt64(), hard.ValueInt64())); err != nil {
			resp.Diagnostics.AddAttributeError(entry.AtName("soft"), "Invalid ulimit",
				fmt.Sprintf("%s: %s. Give soft at most hard, both at least -1 (unlimited).", entry.AtName("soft"), err))
		}
	}
}

func modeValidator() validator.String {
	return stringCheck{
		summary: "Invalid mode",
		hint:    `Use octal permission bits, e.g. "1777" or "0700".`,
		check: func(s string) error {
			_, err := parseMode(s)
			return err
		},
	}
}

// parseMode reads octal permission bits, sticky, setuid and setgid included.
func parseMode(s string) (uint32, error) {
	mode, err := strconv.ParseUint(s, 8, 32)
	if err != nil || mode > 0o7777 {
		return 0, fmt.Errorf("%q is not octal permission bits", s)
	}
	return uint32(mode), nil
}

// mountsValidator checks what each mount type needs, and that no two mounts
// share a target.
type mountsValidator struct{}

func (mountsValidator) Description(context.Context) string {
	return "bind mounts need an absolute source, volume mounts a volume name; size and mode are for tmpfs; targets are unique"
}

func (v mountsValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (mountsValidator) ValidateList(_ context.Context, req validator.ListRequest, resp *validator.ListResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	targets := map[string]int{}
	for i, elem := range req.ConfigValue.Elements() {
		obj, ok := elem.(types.Object)
		if !ok || !isKnown(obj) {
			continue
		}
		attrs := obj.Attributes()
		kind, _ := attrs["type"].(types.String)
		entry := req.Path.AtListIndex(i)
		if !isKnown(kind) {
			continue
		}
		source, _ := attrs["source"].(types.String)
		set := func(name string) bool { v, ok := attrs[name].(types.String); return ok && !v.IsNull() }
		switch kind.ValueString() {
		case engine.MountBind, engine.MountVolume:
			checkMountSource(kind.ValueString(), source, entry.AtName("source"), &resp.Diagnostics)
			for _, name := range []string{"size", "mode"} {
				if set(name) {
					resp.Diagnostics.AddAttributeError(entry.AtName(name), "Not a tmpfs mount",
						fmt.Sprintf("%s: %s applies to tmpfs mounts only; remove it from this %s mount.", entry.AtName(name), name, kind.ValueString()))
				}
			}
		case engine.MountTmpfs:
			if set("source") {
				resp.Diagnostics.AddAttributeError(entry.AtName("source"), "A tmpfs mount has no source",
					fmt.Sprintf("%s: a tmpfs lives in memory; remove source.", entry.AtName("source")))
			}
		}
		if target, ok := attrs["target"].(types.String); ok && isKnown(target) {
			if first, dup := targets[target.ValueString()]; dup {
				resp.Diagnostics.AddAttributeError(entry.AtName("target"), "Duplicate mount target",
					fmt.Sprintf("%s: %q is already the target of mounts[%d]; mount each path once.", entry.AtName("target"), target.ValueString(), first))
				continue
			}
			targets[target.ValueString()] = i
		}
	}
}

// checkMountSource checks a bind mount's host path or a volume mount's
// volume name.
func checkMountSource(kind string, source types.String, at path.Path, diags *diag.Diagnostics) {
	switch {
	case source.IsUnknown():
	case source.IsNull() && kind == engine.MountBind:
		diags.AddAttributeError(at, "Bind mount without a source",
			fmt.Sprintf("%s: a bind mount needs source, the absolute path on the host.", at))
	case source.IsNull():
		diags.AddAttributeError(at, "Volume mount without a source",
			fmt.Sprintf("%s: a volume mount needs source, the name of a berth_volume of the same pool: source = berth_volume.NAME.name.", at))
	case kind == engine.MountBind && !strings.HasPrefix(source.ValueString(), "/"):
		diags.AddAttributeError(at, "Invalid path",
			fmt.Sprintf("%s: %q is not an absolute path: a bind mount's source is a path on the host, e.g. \"/srv/app\".", at, source.ValueString()))
	case kind == engine.MountVolume && !containerNameRegexp.MatchString(source.ValueString()):
		diags.AddAttributeError(at, "Invalid volume name",
			fmt.Sprintf("%s: %q is not a volume name: use the name of a berth_volume of the same pool, source = berth_volume.NAME.name.", at, source.ValueString()))
	}
}
