package engine

import "testing"

// The reservation must survive the trip through Docker's CPU shares exactly:
// the ledger is rebuilt from it after an in-place resize.
func TestSharesRoundTripIsExact(t *testing.T) {
	for milli := int64(1); milli <= 256_000; milli++ {
		if got := milliCPUOf(sharesOf(milli)); got != milli {
			t.Fatalf("%d millicores -> %d shares -> %d millicores", milli, sharesOf(milli), got)
		}
	}
}

func TestReservationAndLimitsReadBackWhatLimitsWrote(t *testing.T) {
	for _, c := range []struct {
		milliCPU, memory int64
		lim              Limits
	}{
		{250, 64 << 20, Limits{}},
		{250, 64 << 20, Limits{MilliCPU: 2000}},
		{250, 64 << 20, Limits{MemoryBytes: 1 << 30}},
		{1000, 1 << 30, Limits{MilliCPU: 4000, MemoryBytes: 4 << 30}},
	} {
		milliCPU, memory, lim := reservationAndLimits(limits(c.milliCPU, c.memory, c.lim))
		if milliCPU != c.milliCPU || memory != c.memory || lim != c.lim {
			t.Errorf("%+v read back as %d, %d, %+v", c, milliCPU, memory, lim)
		}
	}
}
