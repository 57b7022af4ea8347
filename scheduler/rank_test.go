package scheduler

import "testing"

func TestRankers(t *testing.T) {
	st := func(containers int) *hostState { return &hostState{containers: containers} }
	cases := []struct {
		name   string
		rank   ranker
		a, b   candidate
		better bool
	}{
		{"spread: fewer group members", rankSpread, candidate{group: 1, load: 0.9, st: st(9)}, candidate{group: 2, load: 0.1, st: st(1)}, true},
		{"spread: then lower load", rankSpread, candidate{group: 1, load: 0.2, st: st(9)}, candidate{group: 1, load: 0.3, st: st(1)}, true},
		{"spread: then fewer containers", rankSpread, candidate{load: 0.2, st: st(1)}, candidate{load: 0.2, st: st(2)}, true},
		{"spread: tie keeps the first", rankSpread, candidate{load: 0.2, st: st(1)}, candidate{load: 0.2, st: st(1)}, false},
		{"binpack: higher load", rankBinpack, candidate{load: 0.8, st: st(1)}, candidate{load: 0.2, st: st(5)}, true},
		{"binpack: used beats empty at zero load", rankBinpack, candidate{load: 0, st: st(1)}, candidate{load: 0, st: st(0)}, true},
		{"binpack: ignores spread groups", rankBinpack, candidate{group: 3, load: 0.5, st: st(1)}, candidate{group: 0, load: 0.4, st: st(1)}, true},
		{"random: higher draw", rankRandom, candidate{lottery: 9}, candidate{lottery: 3}, true},
		{"random: lower draw", rankRandom, candidate{lottery: 3}, candidate{lottery: 9}, false},
		{"soft first", preferSoft(rankSpread), candidate{soft: 1, group: 5, st: st(5)}, candidate{soft: 0, group: 0, st: st(0)}, true},
		{"soft tie defers", preferSoft(rankBinpack), candidate{soft: 1, load: 0.1, st: st(1)}, candidate{soft: 1, load: 0.5, st: st(1)}, false},
	}
	for _, c := range cases {
		if got := c.rank(c.a, c.b); got != c.better {
			t.Errorf("%s: got %v, want %v", c.name, got, c.better)
		}
	}
}

// TestPick runs stages 1-3 on a small pool for each strategy.
func TestPick(t *testing.T) {
	hosts := []Host{
		host("node1", 4, 4*gib, "zone", "a", "disk", "ssd"),
		host("node2", 4, 4*gib, "zone", "b"),
		host("node3", 4, 4*gib, "zone", "c"),
	}
	cases := []struct {
		name     string
		strategy Strategy
		used     map[string]Resources
		req      Request
		want     string
	}{
		{"spread picks the emptiest", Spread, map[string]Resources{"node1": {MilliCPU: 2000}, "node2": {MilliCPU: 1000}, "node3": {MilliCPU: 3000}}, Request{}, "node2"},
		{"binpack picks the fullest that fits", Binpack, map[string]Resources{"node1": {MilliCPU: 2000}, "node2": {MilliCPU: 1000}, "node3": {MilliCPU: 3500}}, Request{Resources: Resources{MilliCPU: 1000}}, "node1"},
		{"hard constraint", Spread, nil, Request{Constraints: []string{"zone in [b, c]", "node.name != node2"}}, "node3"},
		{"soft constraint beats load", Spread, map[string]Resources{"node1": {MilliCPU: 3000}}, Request{Constraints: []string{"~disk == ssd"}}, "node1"},
		{"soft constraint yields to a hard one", Spread, nil, Request{Constraints: []string{"~disk == ssd", "zone == c"}}, "node3"},
		{"pinned", Binpack, map[string]Resources{"node1": {MilliCPU: 3000}}, Request{Host: "node2"}, "node2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := testScheduler(t, c.strategy, hosts...)
			for name, r := range c.used {
				mustReserve(t, s, Request{Host: name, Resources: r})
			}
			rq, err := s.compile(&c.req)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := s.pick(s.hosts.Load(), rq)
			if !ok || got.slot.name != c.want {
				t.Errorf("picked %v (found %v), want %s", got.slot, ok, c.want)
			}
		})
	}
}

func TestRandomStrategyUsesEveryHost(t *testing.T) {
	s, _ := testScheduler(t, Random, host("node1", 100, 100*gib), host("node2", 100, 100*gib), host("node3", 100, 100*gib))
	seen := map[string]int{}
	for range 300 {
		seen[mustReserve(t, s, Request{Resources: Resources{MilliCPU: 10}}).Host]++
	}
	for _, n := range []string{"node1", "node2", "node3"} {
		if seen[n] < 50 {
			t.Errorf("random placed %d of 300 on %s: %v", seen[n], n, seen)
		}
	}
}

func TestSeedReplaysPlacements(t *testing.T) {
	run := func() []string {
		s, _ := testScheduler(t, Random, host("node1", 100, 100*gib), host("node2", 100, 100*gib), host("node3", 100, 100*gib))
		var out []string
		for range 20 {
			out = append(out, mustReserve(t, s, Request{}).Host)
		}
		return out
	}
	a, b := run(), run()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, different placements: %v vs %v", a, b)
		}
	}
}
