package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
)

// storePairs gives a test two clients of one store: two connections for
// etcd (two replicas), the same store twice for the embedded ones.
func storePairs(t *testing.T, test func(t *testing.T, a, b Store)) {
	stores(t, func(t *testing.T, s Store) {
		if _, ok := s.(*Etcd); ok {
			test(t, s, openEtcd(t))
			return
		}
		test(t, s, s)
	})
}

// slotEvent is a winning commit on one slot.
type slotEvent struct {
	revision int64
	booked   bool
	id       string
}

// slotHost is what the property test keeps per host: slots used, by whom.
type slotHost struct {
	Holders map[string]string `json:"holders"` // slot -> booking id
}

// TestTwoClientsCASNeverOvercommit is the core's compare-and-swap property
// on the store: workers on two clients reserve and release slots of a few
// hosts by read, modify, commit-if-unchanged. A host record never holds
// more than its capacity, a slot never has two holders, and of all the
// commits that expected one revision of a key, at most one won.
func TestTwoClientsCASNeverOvercommit(t *testing.T) {
	const (
		hosts    = 3
		capacity = 4
		workers  = 8 // per client
		opsEach  = 40
	)
	storePairs(t, func(t *testing.T, a, b Store) {
		ctx := context.Background()
		var mu sync.Mutex
		winsAt := map[string]int{}         // key@revision -> commits that won expecting it
		events := map[string][]slotEvent{} // slot -> winning bookings and releases
		var failures []string
		fail := func(format string, args ...any) {
			mu.Lock()
			failures = append(failures, fmt.Sprintf(format, args...))
			mu.Unlock()
		}

		step := func(s Store, rng *rand.Rand, id string) {
			hostKey := fmt.Sprintf("h%d", rng.IntN(hosts))
			var h slotHost
			expect := Absent
			item, err := s.Get(ctx, "hosts", hostKey)
			switch {
			case errors.Is(err, ErrNotFound):
			case err != nil:
				fail("get %s: %v", hostKey, err)
				return
			default:
				expect = item.Revision
				if err := json.Unmarshal(item.Value, &h); err != nil {
					fail("decode %s: %v", hostKey, err)
					return
				}
			}
			if h.Holders == nil {
				h.Holders = map[string]string{}
			}
			// Release one of ours half the time, else take a free slot.
			var slot string
			released := false
			for sl, holder := range h.Holders {
				if holder[:1] == id[:1] && rng.IntN(2) == 0 {
					slot, released = sl, true
					delete(h.Holders, sl)
					break
				}
			}
			if !released {
				for i := range capacity {
					if _, taken := h.Holders[fmt.Sprint(i)]; !taken {
						slot = fmt.Sprint(i)
						break
					}
				}
				if slot == "" {
					return // full
				}
				h.Holders[slot] = id
			}
			value, _ := json.Marshal(h)
			booking := Op{Bucket: "bookings", Key: hostKey + "/" + slot, Value: []byte(id), Expect: Absent}
			if released {
				booking = Op{Bucket: "bookings", Key: hostKey + "/" + slot} // delete
			}
			rev, err := s.Commit(ctx, Op{Bucket: "hosts", Key: hostKey, Value: value, Expect: expect}, booking)
			switch {
			case errors.Is(err, ErrConflict):
				return
			case err != nil:
				fail("commit: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			winsAt[fmt.Sprintf("%s@%d", hostKey, expect)]++
			if n := winsAt[fmt.Sprintf("%s@%d", hostKey, expect)]; n > 1 {
				failures = append(failures, fmt.Sprintf("%d commits won expecting %s at revision %d", n, hostKey, expect))
			}
			if len(h.Holders) > capacity {
				failures = append(failures, fmt.Sprintf("%s holds %d slots, capacity %d", hostKey, len(h.Holders), capacity))
			}
			full := hostKey + "/" + slot
			events[full] = append(events[full], slotEvent{revision: rev, booked: !released, id: id})
		}

		var wg sync.WaitGroup
		for c, s := range []Store{a, b} {
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(c), uint64(w)))
					for i := range opsEach {
						step(s, rng, fmt.Sprintf("%c%d-%d", 'a'+c, w, i))
					}
				}()
			}
		}
		wg.Wait()
		// In commit order, each slot is booked, released, booked...: never
		// booked twice without a release between.
		for slot, evs := range events {
			sort.Slice(evs, func(i, j int) bool { return evs[i].revision < evs[j].revision })
			for i, ev := range evs {
				if ev.booked != (i%2 == 0) {
					failures = append(failures, fmt.Sprintf("slot %s: event %d of %d at revision %d (booked=%v by %s) breaks book/release alternation", slot, i, len(evs), ev.revision, ev.booked, ev.id))
					break
				}
			}
		}
		for _, f := range failures[:min(len(failures), 10)] {
			t.Error(f)
		}

		// The end state agrees with itself: each host's holders are exactly
		// its bookings.
		for i := range hosts {
			hostKey := fmt.Sprintf("h%d", i)
			item, err := a.Get(ctx, "hosts", hostKey)
			if err != nil {
				t.Fatalf("get %s: %v", hostKey, err)
			}
			var h slotHost
			if err := json.Unmarshal(item.Value, &h); err != nil {
				t.Fatal(err)
			}
			bookings, err := b.List(ctx, "bookings", hostKey+"/")
			if err != nil {
				t.Fatal(err)
			}
			if len(bookings) != len(h.Holders) || len(h.Holders) > capacity {
				t.Errorf("%s: %d holders, %d bookings, capacity %d", hostKey, len(h.Holders), len(bookings), capacity)
			}
			for _, bk := range bookings {
				slot := bk.Key[len(hostKey)+1:]
				if h.Holders[slot] != string(bk.Value) {
					t.Errorf("%s slot %s: host says %q, booking says %q", hostKey, slot, h.Holders[slot], bk.Value)
				}
			}
		}
		mu.Lock()
		t.Logf("%d winning commits on %d host keys", len(winsAt), hosts)
		mu.Unlock()
	})
}
