package scheduler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Errors callers can test for with errors.Is.
var (
	ErrUnknownHost = errors.New("host is not in the pool")
	ErrNotFound    = errors.New("no such reservation")
	ErrReleased    = errors.New("reservation already released")
	ErrNoVerifier  = errors.New("no verifier configured: a lease never frees capacity without asking the engine")
	ErrKeyTaken    = errors.New("another reservation holds the key")
)

// Defaults for a zero Config.
const (
	DefaultSampleSize = 16
	DefaultLeaseTTL   = 15 * time.Minute
)

// Scheduler places requests on hosts and holds their reservations. All
// methods are safe for concurrent use. Placement takes no global lock: each
// host's state is an immutable value behind an atomic pointer, and a
// reservation is a compare-and-swap on it.
type Scheduler struct {
	clock      Clock
	verifier   Verifier
	leaseTTL   time.Duration
	sampleSize int
	strategy   Strategy

	filters     []filter
	randomStart bool
	better      ranker
	rand        randStream

	hosts atomic.Pointer[hostTable]
	// adminMu serializes host-set changes (SetHosts, SetHealthy) and guards
	// retired; placement never takes it.
	adminMu sync.Mutex
	retired map[string]*hostSlot // removed hosts that still hold reservations

	keys        *recordIndex // live reservations (and in-flight claims) by key
	ids         *recordIndex // live reservations by id
	constraints constraintCache
	requests    sync.Pool // *compiledRequest, reused across placements
	idPrefix    string
	idSeq       atomic.Uint64
}

// record is one reservation. Its mutex is held by the placing goroutine
// until the placement settles, so concurrent callers with the same key
// wait for it (microseconds: placement does no I/O); afterwards it guards
// state changes (bind, resize, release), again never across I/O.
type record struct {
	mu   sync.Mutex
	res  Reservation
	slot *hostSlot
	held change // what the reservation holds on slot
	err  error  // placement failed; the record left the key index
}

// New wires the placement pipeline.
func New(cfg Config) *Scheduler {
	s := &Scheduler{
		clock:      cfg.Clock,
		verifier:   cfg.Verifier,
		leaseTTL:   cfg.LeaseTTL,
		sampleSize: cfg.SampleSize,
		strategy:   cfg.Strategy,
		retired:    map[string]*hostSlot{},
		keys:       newRecordIndex(),
		ids:        newRecordIndex(),
	}
	s.requests.New = func() any { return new(compiledRequest) }
	if s.clock == nil {
		s.clock = wallClock{}
	}
	if s.leaseTTL <= 0 {
		s.leaseTTL = DefaultLeaseTTL
	}
	if s.sampleSize <= 0 {
		s.sampleSize = DefaultSampleSize
	}
	if !s.strategy.Valid() || s.strategy == "" {
		s.strategy = Spread
	}
	// Randomness: one draw from the injected source seeds a lock-free
	// stream (and the reservation id prefix), so a seed replays placements.
	seed := uint64(s.clock.Now().UnixNano())
	if cfg.Rand != nil {
		seed = cfg.Rand.Uint64()
	}
	s.rand.state.Store(seed)
	s.idPrefix = "r" + strconv.FormatUint(s.rand.next()>>32, 16) + "-"

	// Stage 1, feasibility: every filter must admit a host. They run
	// cheapest and most fundamental first, and an explanation quotes the
	// first one a host fails.
	s.filters = []filter{
		{ReasonUnhealthy, admitsHealthy, explainHealthy},          // health: unhealthy or removed hosts take nothing
		{ReasonCordoned, admitsUncordoned, explainCordoned},       // cordoned hosts keep what runs, take nothing new
		{ReasonNotPinned, admitsPinned, explainPinned},            // pinned host: there or nowhere
		{ReasonConstraint, admitsConstraints, explainConstraints}, // hard constraints on labels
		{ReasonSlots, admitsSlots, explainSlots},                  // max_containers
		{ReasonCPU, admitsCPU, explainCPU},                        // CPU fits
		{ReasonMemory, admitsMemory, explainMemory},               // memory fits
		{ReasonDisk, admitsDisk, explainDisk},                     // volume size fits the declared disk
		{ReasonDevices, admitsDevices, explainDevices},            // enough free devices (ids never handed out twice)
		{ReasonPort, admitsPorts, explainPorts},                   // requested host ports free, enough free in range
		{ReasonMaxPerHost, admitsMaxPerHost, explainMaxPerHost},   // spread group's max_per_host
	}
	// Stage 2, sampling: the walk over hosts stops after SampleSize feasible
	// candidates, so cost does not grow with the pool; pools no larger than
	// that are considered whole, which keeps spread exact on small pools.
	// Spread and random start the walk at a random host; binpack always
	// starts at the first, so it keeps filling the hosts it already uses.
	s.randomStart = s.strategy != Binpack
	// Stage 3, ranking: hosts satisfying more soft constraints first, then
	// the strategy.
	strategies := map[Strategy]ranker{Spread: rankSpread, Binpack: rankBinpack, Random: rankRandom}
	s.better = preferSoft(strategies[s.strategy])
	// Stage 4, reservation: compare-and-swap of the chosen host's state
	// (place); a lost race re-runs stages 1-3 on fresh states.
	s.hosts.Store(newTable(nil))
	return s
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// SetHosts replaces the host set. Hosts that stay keep their reservations
// and take the new configuration (a shrunk host may be left overcommitted:
// it then fits nothing new). Removed hosts take nothing new but keep
// accounting for reservations still on them, and get them back if re-added.
// Of hosts with the same name, the last wins.
func (s *Scheduler) SetHosts(hosts []Host) {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	old := s.hosts.Load()
	byName := make(map[string]*hostConfig, len(hosts))
	for _, h := range hosts {
		byName[h.Name] = normalizeHost(h)
	}
	slots := make([]*hostSlot, 0, len(byName))
	// New slots share one array, so the placement walk reads them in order.
	fresh := make([]hostSlot, len(byName))
	names := make([]string, 0, len(byName))
	for name := range byName {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		h := byName[name]
		slot := old.slot(name)
		if slot == nil {
			slot = s.retired[name]
			delete(s.retired, name)
		}
		if slot == nil {
			slot, fresh = &fresh[0], fresh[1:]
			slot.name = name
			slot.state.Store(&hostState{host: h, healthy: h.Healthy})
		} else {
			slot.update(func(st *hostState) *hostState { return st.withHost(h, h.Healthy, false) })
		}
		slots = append(slots, slot)
	}
	s.hosts.Store(newTable(slots))
	for _, slot := range old.list {
		if _, kept := byName[slot.name]; kept {
			continue
		}
		st := slot.update(func(st *hostState) *hostState { return st.withHost(st.host, st.healthy, true) })
		if st.containers > 0 {
			s.retired[slot.name] = slot
		}
	}
}

// SetHealthy marks a host healthy or not; unknown hosts are ignored.
func (s *Scheduler) SetHealthy(host string, healthy bool) {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	slot := s.hosts.Load().slot(host)
	if slot == nil {
		return
	}
	slot.update(func(st *hostState) *hostState { return st.withHost(st.host, healthy, st.retired) })
}

// SetUnhealthy marks a host unhealthy for a reason that explanations then
// give ("unhealthy: engine node1 ... unreachable: connection refused").
func (s *Scheduler) SetUnhealthy(host, cause string) {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	slot := s.hosts.Load().slot(host)
	if slot == nil {
		return
	}
	slot.update(func(st *hostState) *hostState {
		next := st.withHost(st.host, false, st.retired)
		next.sickness = cause
		return next
	})
}

// slotFor finds a host in the pool, or among removed hosts that still
// hold reservations.
func (s *Scheduler) slotFor(host string) *hostSlot {
	if slot := s.hosts.Load().slot(host); slot != nil {
		return slot
	}
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	return s.retired[host]
}

// Reserve places req and holds its capacity and ports. It is idempotent by
// req.Key among live reservations: the same key returns the same
// reservation, also to concurrent callers. When no host fits, the error is
// a *NoFitError naming every host and why.
func (s *Scheduler) Reserve(ctx context.Context, req Request) (Reservation, error) {
	if err := ctx.Err(); err != nil {
		return Reservation{}, err
	}
	rq, err := s.compile(&req)
	if err != nil {
		return Reservation{}, err
	}
	defer s.requests.Put(rq)
	if req.Host != "" && s.hosts.Load().slot(req.Host) == nil {
		return Reservation{}, fmt.Errorf("request %s: pinned host %q: %w", requestName(&req), req.Host, ErrUnknownHost)
	}
	rec, res, err := s.claim(ctx, req.Key)
	if rec == nil {
		return res, err
	}
	err = s.place(ctx, rec, rq)
	return s.settle(rec, err)
}

// ReserveBatch places several requests, one Result per request in order.
// Each sees the ones before it, so a spread group in one batch spreads;
// partial success is normal.
func (s *Scheduler) ReserveBatch(ctx context.Context, reqs []Request) []Result {
	out := make([]Result, len(reqs))
	for i, req := range reqs {
		out[i].Reservation, out[i].Err = s.Reserve(ctx, req)
	}
	return out
}

// claim returns either a new record, locked, that the caller must fill and
// settle, or (rec nil) the live reservation already held under key. An
// empty key claims nothing: every call is new.
func (s *Scheduler) claim(ctx context.Context, key string) (*record, Reservation, error) {
	for {
		if key != "" {
			if rec := s.keys.load(key); rec != nil {
				if res, live := rec.snapshot(); live {
					return nil, res, nil
				}
				// Failed or released meanwhile: the key is free again.
				if err := ctx.Err(); err != nil {
					return nil, Reservation{}, err
				}
				continue
			}
		}
		rec := &record{}
		rec.mu.Lock()
		if key == "" {
			return rec, Reservation{}, nil
		}
		if s.keys.store(key, rec) {
			return rec, Reservation{}, nil
		}
		rec.mu.Unlock()
	}
}

// snapshot waits for the record to settle and copies its reservation.
func (r *record) snapshot() (Reservation, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil || r.res.State == Released {
		return Reservation{}, false
	}
	return r.res.clone(), true
}

func (r Reservation) clone() Reservation {
	r.Ports = slices.Clone(r.Ports)
	r.DeviceIDs = slices.Clone(r.DeviceIDs)
	return r
}

// settle publishes a placed record (or withdraws a failed claim) and
// unlocks it.
func (s *Scheduler) settle(rec *record, err error) (Reservation, error) {
	defer rec.mu.Unlock()
	if err != nil {
		rec.err = err
		if rec.res.Key != "" {
			s.keys.compareAndDelete(rec.res.Key, rec)
		}
		return Reservation{}, err
	}
	return rec.res.clone(), nil
}

// place runs the pipeline for rq and reserves on the chosen host.
func (s *Scheduler) place(ctx context.Context, rec *record, rq *compiledRequest) error {
	rec.res.Key = rq.req.Key // settle needs it even on failure
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		tbl := s.hosts.Load()
		c, ok := s.pick(tbl, rq)
		if !ok {
			rejections, fits := s.explain(tbl, rq)
			if fits {
				continue // capacity came back while explaining
			}
			return &NoFitError{Request: requestName(&rq.req), Needs: rq.req.Resources, Rejections: rejections,
				DiskBytes: rq.req.DiskBytes, Devices: rq.req.Devices, Volume: rq.req.Volume}
		}
		var portSeed uint64
		if len(rq.req.Ports) > 0 {
			portSeed = s.rand.next()
		}
		ports, bindings := assignPorts(c.st, rq, portSeed)
		req := &rq.req
		held := change{resources: req.Resources, ports: ports, group: req.SpreadGroup, sign: 1,
			volume: req.Volume, disk: req.DiskBytes, devices: req.Devices, deviceIDs: c.st.pickDevices(req.Devices)}
		if !c.slot.state.CompareAndSwap(c.st, c.st.apply(held)) {
			continue // the host changed: rank again on fresh states
		}
		rec.slot, rec.held = c.slot, held
		rec.res = Reservation{
			Key:         req.Key,
			Name:        req.Name,
			Host:        c.slot.name,
			Resources:   req.Resources,
			Ports:       bindings,
			SpreadGroup: req.SpreadGroup,
			State:       Reserved,
			LeaseExpiry: s.clock.Now().Add(s.leaseTTL),
			DiskBytes:   req.DiskBytes,
			Devices:     req.Devices,
			DeviceIDs:   slices.Clone(held.deviceIDs),
			Volume:      req.Volume,
		}
		s.index(rec, "")
		return nil
	}
}

// pick walks the hosts from a random start, filters, and keeps the best
// of at most sampleSize feasible candidates.
func (s *Scheduler) pick(tbl *hostTable, rq *compiledRequest) (candidate, bool) {
	hosts := tbl.list
	if rq.req.Host != "" {
		i, ok := tbl.index[rq.req.Host]
		if !ok {
			return candidate{}, false
		}
		hosts = hosts[i : i+1]
	}
	n := len(hosts)
	i := 0
	if s.randomStart && n > 1 {
		i = int(s.rand.next() % uint64(n))
	}
	var best candidate
	feasible := 0
	for seen := 0; seen < n && feasible < s.sampleSize; seen++ {
		slot := hosts[i]
		if i++; i == n {
			i = 0
		}
		st := slot.state.Load()
		if !s.admits(st, rq) {
			continue
		}
		c := candidate{slot: slot, st: st, load: st.load()}
		if len(rq.soft) > 0 {
			c.soft = softMatches(st, rq)
		}
		if rq.req.SpreadGroup != "" {
			c.group = st.groupCount(rq.req.SpreadGroup)
		}
		if s.strategy == Random {
			c.lottery = s.rand.next()
		}
		if feasible++; feasible == 1 || s.better(c, best) {
			best = c
		}
	}
	return best, feasible > 0
}

// explain rejects hosts one by one with reasons; fits reports that some
// host admits rq after all (capacity came back meanwhile).
func (s *Scheduler) explain(tbl *hostTable, rq *compiledRequest) (rejections []Rejection, fits bool) {
	for _, slot := range tbl.list {
		r, ok := s.reject(slot.state.Load(), rq)
		if ok {
			return nil, true
		}
		rejections = append(rejections, r)
	}
	return rejections, false
}

// index gives a placed record an id (keeping want when set and free) and
// publishes it; it reports false when want is taken.
func (s *Scheduler) index(rec *record, want string) bool {
	if want != "" {
		rec.res.ID = want
		return s.ids.store(want, rec)
	}
	var buf [32]byte
	for {
		id := string(strconv.AppendUint(append(buf[:0], s.idPrefix...), s.idSeq.Add(1), 36))
		if s.ids.store(id, rec) {
			rec.res.ID = id
			return true
		}
	}
}
