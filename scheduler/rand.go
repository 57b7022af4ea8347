package scheduler

import "sync/atomic"

// randStream is a goroutine-safe, lock-free random sequence seeded once
// from the injected *rand.Rand (which is not goroutine-safe and is never
// touched again): each draw is splitmix64 of an atomic counter. A given
// seed replays the same sequence of draws.
type randStream struct {
	state atomic.Uint64
}

func (r *randStream) next() uint64 {
	z := r.state.Add(0x9e3779b97f4a7c15)
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}
