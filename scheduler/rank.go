package scheduler

// candidate is a feasible host with what the rankers compare.
type candidate struct {
	slot    *hostSlot
	st      *hostState
	soft    int     // soft constraints the host satisfies
	group   int     // members of the request's spread group on the host
	load    float64 // CPU fraction + memory fraction held
	lottery uint64  // the random strategy's draw
}

// ranker reports whether a is a better place than b. Ties keep the host
// met first, and the walk starts at a random host, so equal hosts share
// the load (and concurrent placements rarely collide).
type ranker func(a, b candidate) bool

// rankSpread prefers the fewest members of the request's spread group,
// then the least loaded host, then the fewest containers.
func rankSpread(a, b candidate) bool {
	if a.group != b.group {
		return a.group < b.group
	}
	if a.load != b.load {
		return a.load < b.load
	}
	return a.st.containers < b.st.containers
}

// rankBinpack prefers the most loaded host that fits, then the one with the
// most containers: an empty host never beats one already in use.
func rankBinpack(a, b candidate) bool {
	if a.load != b.load {
		return a.load > b.load
	}
	return a.st.containers > b.st.containers
}

// rankRandom prefers the higher draw: a uniform choice among candidates.
func rankRandom(a, b candidate) bool {
	return a.lottery > b.lottery
}

// preferSoft ranks hosts that satisfy more soft constraints first, then
// defers to the strategy.
func preferSoft(next ranker) ranker {
	return func(a, b candidate) bool {
		if a.soft != b.soft {
			return a.soft > b.soft
		}
		return next(a, b)
	}
}

func softMatches(st *hostState, rq *compiledRequest) int {
	n := 0
	for _, c := range rq.soft {
		if st.host.satisfies(c) {
			n++
		}
	}
	return n
}

// Valid reports whether s names a known strategy ("" means spread).
func (s Strategy) Valid() bool {
	switch s {
	case "", Spread, Binpack, Random:
		return true
	}
	return false
}
