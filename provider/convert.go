package provider

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// maxMemory bounds every memory size: far beyond any machine, and far from
// int64 overflow (go-units would silently wrap "9999999TiB" to a negative).
const maxMemory = int64(1) << 50 // 1 PiB

// memoryNumber splits a size into its number and unit, the way go-units reads it.
var memoryNumber = regexp.MustCompile(`^(\d+(?:\.\d+)?) ?([kKmMgGtTpP]?)([iI]?[bB]?)$`)

// parseMemory turns "256MiB" (any spelling go-units accepts, binary units)
// into bytes. A bare number is refused: the Docker provider reads
// `memory = 512` as megabytes, go-units as bytes, so it is ambiguous.
func parseMemory(s string) (int64, error) {
	return parseSize(s, "memory")
}

// parseSize is parseMemory for any size; what names it in errors ("disk").
func parseSize(s, what string) (int64, error) {
	trimmed := strings.TrimSpace(s)
	parts := memoryNumber.FindStringSubmatch(trimmed)
	if parts == nil {
		return 0, fmt.Errorf("%q is not a %s size", s, what)
	}
	if parts[2] == "" && parts[3] == "" {
		return 0, fmt.Errorf("%q has no unit: write %q for megabytes (or %q for bytes)", s, parts[1]+"MiB", parts[1]+"B")
	}
	if number, err := strconv.ParseFloat(parts[1], 64); err != nil || number*float64(unitSizes[strings.ToLower(parts[2])]) > float64(maxMemory) {
		return 0, fmt.Errorf("%s size %q is too large: at most %s", what, s, formatMemory(maxMemory))
	}
	b, err := units.RAMInBytes(trimmed)
	if err != nil {
		return 0, fmt.Errorf("%q is not a %s size", s, what)
	}
	if b <= 0 {
		return 0, fmt.Errorf("%s size %q must be greater than zero", what, s)
	}
	return b, nil
}

// unitSizes are go-units' binary unit letters ("" for bytes).
var unitSizes = map[string]int64{"": 1, "k": units.KiB, "m": units.MiB, "g": units.GiB, "t": units.TiB, "p": units.PiB}

// formatMemory renders bytes exactly: in the largest binary unit that divides
// them, else in bytes ("1536B"), so that parseMemory(formatMemory(b)) == b.
func formatMemory(b int64) string {
	for _, u := range []struct {
		size int64
		name string
	}{{units.TiB, "TiB"}, {units.GiB, "GiB"}, {units.MiB, "MiB"}, {units.KiB, "KiB"}} {
		if b != 0 && b%u.size == 0 {
			return fmt.Sprintf("%d%s", b/u.size, u.name)
		}
	}
	return strconv.FormatInt(b, 10) + "B"
}

// memoryValue keeps the user's spelling when it means the same bytes as
// observed, so that "0.25GiB" in configuration does not diff against
// "256MiB".
func memoryValue(prior types.String, observed int64) types.String {
	if !prior.IsNull() && !prior.IsUnknown() {
		if b, err := parseMemory(prior.ValueString()); err == nil && b == observed {
			return prior
		}
	}
	return types.StringValue(formatMemory(observed))
}

// sameMemory reports whether two known sizes mean the same bytes.
func sameMemory(a, b types.String) bool {
	if !isKnown(a) || !isKnown(b) {
		return false
	}
	ab, aerr := parseMemory(a.ValueString())
	bb, berr := parseMemory(b.ValueString())
	return aerr == nil && berr == nil && ab == bb
}

// milliCPU converts a CPU count (possibly fractional) to millicores.
func milliCPU(cpu float64) int64 {
	return int64(math.Round(cpu * 1000))
}

// cpuValue keeps the user's number when it rounds to the observed
// millicores, for the same reason as memoryValue.
func cpuValue(prior types.Float64, observed int64) types.Float64 {
	if !prior.IsNull() && !prior.IsUnknown() && milliCPU(prior.ValueFloat64()) == observed {
		return prior
	}
	return types.Float64Value(float64(observed) / 1000)
}

// parsePortRange parses "MIN-MAX".
func parsePortRange(s string) (lo, hi int, err error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return 0, 0, fmt.Errorf("port range %q is not MIN-MAX", s)
	}
	if lo, err = strconv.Atoi(strings.TrimSpace(a)); err != nil {
		return 0, 0, fmt.Errorf("MIN %q is not a number", a)
	}
	if hi, err = strconv.Atoi(strings.TrimSpace(b)); err != nil {
		return 0, 0, fmt.Errorf("MAX %q is not a number", b)
	}
	if lo < 1 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("port range %q is out of order or out of 1-65535", s)
	}
	return lo, hi, nil
}

// parseDuration parses a Go duration ("10s", "1m30s"); null means fallback.
func parseDuration(v types.String, fallback time.Duration) (time.Duration, error) {
	if v.IsNull() || v.IsUnknown() {
		return fallback, nil
	}
	d, err := time.ParseDuration(v.ValueString())
	if err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %q is negative", v.ValueString())
	}
	return d, nil
}
