package scheduler

import (
	"strconv"
	"strings"
)

// formatCPU renders millicores as decimal CPUs, the unit users write in
// configuration: 500 -> "0.5 CPU", 2000 -> "2 CPU".
func formatCPU(milli int64) string {
	return trimDecimal(milli, 1000, 3) + " CPU"
}

// binaryUnits are the memory units of explanations, largest first.
var binaryUnits = [...]struct {
	suffix string
	size   int64
}{
	{"TiB", 1 << 40},
	{"GiB", 1 << 30},
	{"MiB", 1 << 20},
	{"KiB", 1 << 10},
}

// formatBytes renders memory in binary units, truncated (never rounded up,
// so "120MiB free" never promises more than there is) to two decimals.
func formatBytes(b int64) string {
	sign := ""
	if b < 0 {
		sign, b = "-", -b
	}
	for _, u := range binaryUnits {
		if b >= u.size {
			return sign + trimDecimal(b*100/u.size, 100, 2) + u.suffix
		}
	}
	return sign + strconv.FormatInt(b, 10) + "B"
}

// formatResources renders an amount the way explanations quote it.
func formatResources(r Resources) string {
	return formatCPU(r.MilliCPU) + ", " + formatBytes(r.MemoryBytes)
}

// trimDecimal renders v/scale with at most digits decimals, dropping
// trailing zeros: trimDecimal(1250, 1000, 3) = "1.25".
func trimDecimal(v, scale int64, digits int) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	whole := strconv.FormatInt(v/scale, 10)
	frac := v % scale
	if frac == 0 {
		return sign + whole
	}
	f := strconv.FormatInt(frac, 10)
	f = strings.Repeat("0", digits-len(f)) + f
	return sign + whole + "." + strings.TrimRight(f, "0")
}

// formatCount renders a count with thousands separators: 9000 -> "9,000".
func formatCount(n int) string {
	if n < 0 {
		return "-" + formatCount(-n)
	}
	s := strconv.Itoa(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// String renders an amount the way explanations quote it: "0.5 CPU, 64MiB".
func (r Resources) String() string {
	return formatResources(r)
}
