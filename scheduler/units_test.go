package scheduler

import "testing"

func TestFormatting(t *testing.T) {
	cases := []struct{ got, want string }{
		{formatCPU(500), "0.5 CPU"},
		{formatCPU(2000), "2 CPU"},
		{formatCPU(1250), "1.25 CPU"},
		{formatCPU(1), "0.001 CPU"},
		{formatCPU(0), "0 CPU"},
		{formatBytes(256 * mib), "256MiB"},
		{formatBytes(120 * mib), "120MiB"},
		{formatBytes(3 * gib / 2), "1.5GiB"},
		{formatBytes(256*mib - 1), "255.99MiB"},
		{formatBytes(512), "512B"},
		{formatBytes(0), "0B"},
		{formatBytes(2048), "2KiB"},
		{formatBytes(-mib), "-1MiB"},
		{formatBytes(1 << 40), "1TiB"},
		{formatResources(Resources{MilliCPU: 500, MemoryBytes: 256 * mib}), "0.5 CPU, 256MiB"},
		{formatCount(0), "0"},
		{formatCount(999), "999"},
		{formatCount(9000), "9,000"},
		{formatCount(1234567), "1,234,567"},
		{formatCount(-1000), "-1,000"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
