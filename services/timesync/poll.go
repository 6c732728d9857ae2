package timesync

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/beevik/ntp"
)

// Per round: at most maxQueries servers are asked, each within
// queryTimeout; a name is resolved within resolveTimeout.
const (
	maxQueries     = 4
	queryTimeout   = 2 * time.Second
	resolveTimeout = 5 * time.Second
	// noPlanRetry is how long the poller waits for servers when the plan
	// names none (it wakes earlier on Update).
	noPlanRetry = time.Minute
	// maxRefused bounds the servers remembered as refusing us.
	maxRefused = 64
)

// poll runs rounds until ctx is done.
func (s *Service) poll(ctx context.Context) {
	var interval time.Duration
	var last Plan
	for ctx.Err() == nil {
		p := s.currentPlan()
		res := s.round(ctx, p)
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		synced := s.ever
		s.mu.Unlock()
		switch {
		case errors.Is(res.err, errNoServers):
			interval = noPlanRetry
		default:
			interval = nextPoll(interval, synced, res.ok, res.action)
			if res.rateKiss {
				interval = max(interval, rateKissBackoff)
			}
		}
		s.stats.Add(func(st *Stats) { st.Poll = interval })
		last = p
		t := time.NewTimer(interval)
	wait:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
				break wait
			case <-s.planCh:
				// The daemon updates the plan often; only new upstream
				// servers are worth an early round, and only while the
				// clock still waits for its first sync.
				p := s.currentPlan()
				if p.sameUpstream(last) {
					continue
				}
				// Servers that refused us may welcome us under a new plan.
				s.mu.Lock()
				clear(s.kiss)
				s.mu.Unlock()
				last = p
				if !synced {
					t.Stop()
					interval = 0
					break wait
				}
			}
		}
	}
}

// roundResult is what one round did.
type roundResult struct {
	ok       bool
	action   Action
	rateKiss bool
	err      error
}

// round asks the plan's servers once and disciplines the clock with the
// best answer.
func (s *Service) round(ctx context.Context, p Plan) roundResult {
	if len(p.Servers) == 0 && len(p.Names) == 0 {
		return roundResult{err: errNoServers}
	}
	cands := s.candidates(ctx, p)
	if len(cands) == 0 {
		// Nothing resolved (DNS may not be up yet at boot) or every
		// server refused us: a failed round, retried like one.
		return roundResult{}
	}
	responses := make([]*ntp.Response, len(cands))
	errs := make([]error, len(cands))
	var wg sync.WaitGroup
	for i, c := range cands {
		wg.Add(1)
		go func() {
			defer wg.Done()
			responses[i], errs[i] = s.query(ctx, c.addr)
		}()
	}
	wg.Wait()

	var res roundResult
	var samples []sample
	for i, c := range cands {
		s.stats.Add(func(st *Stats) { st.Queries++ })
		if errs[i] != nil {
			s.stats.Add(func(st *Stats) { st.QueryErrors++ })
			s.log.Debug("timesync: query", "server", c.addr, "err", errs[i])
			continue
		}
		r := responses[i]
		if err := r.Validate(); err != nil {
			reason := rejectReason(err)
			s.stats.Add(func(st *Stats) { st.Rejected[reason]++ })
			s.log.Debug("timesync: rejected response", "server", c.addr, "reason", reason, "err", err)
			if r.IsKissOfDeath() {
				s.kissed(c.addr, r.KissCode, &res)
			}
			continue
		}
		samples = append(samples, sample{server: c.addr, name: c.name, resp: r, distance: distanceOf(r)})
	}
	best, falsetickers := selectSample(samples)
	for _, i := range falsetickers {
		s.stats.Add(func(st *Stats) { st.Rejected[RejectFalseticker]++ })
		s.log.Warn("timesync: falseticker", "server", samples[i].server, "offset", samples[i].resp.ClockOffset)
	}
	if best < 0 {
		return res
	}
	return s.apply(samples[best], res)
}

// kissed handles a kiss-o'-death (RFC 5905 §7.4): DENY and RSTR mean the
// server wants nothing more from us until the plan changes; RATE means
// poll less often.
func (s *Service) kissed(a netip.Addr, code string, res *roundResult) {
	switch code {
	case "DENY", "RSTR":
		s.mu.Lock()
		// Bounded like the plan: a pool name resolves to ever new
		// addresses, and the list starts over with a new plan.
		if len(s.kiss) < maxRefused {
			s.kiss[a] = true
		}
		s.mu.Unlock()
		s.log.Warn("timesync: server refuses us, not asking it again", "server", a, "kiss", code)
	case "RATE":
		res.rateKiss = true
	}
}

// apply disciplines the clock with the chosen sample.
func (s *Service) apply(smp sample, res roundResult) roundResult {
	r := smp.resp
	s.mu.Lock()
	first := !s.ever
	s.mu.Unlock()
	res.action = decide(r.ClockOffset, first)
	var err error
	switch res.action {
	case ActionStep:
		err = s.clock.Step(r.ClockOffset)
	case ActionSlew:
		err = s.clock.Slew(r.ClockOffset)
	}
	if err != nil {
		s.stats.Add(func(st *Stats) { st.ClockErrors++ })
		s.log.Error("timesync: cannot set the clock", "action", res.action, "offset", r.ClockOffset, "err", err)
		return res
	}
	res.ok = true
	now := s.clock.Now()
	source := smp.server.String()
	if smp.name != "" {
		source = smp.name + " (" + source + ")"
	}
	s.mu.Lock()
	s.ever = true
	s.up = upstream{
		synced: true, stratum: r.Stratum, leap: uint8(r.Leap), refID: refIDOf(smp.server), refTime: now,
		rootDelay:      r.RootDelay + r.RTT,
		rootDispersion: r.RootDispersion + r.Precision + r.RTT/2,
	}
	s.mu.Unlock()
	s.stats.Add(func(st *Stats) {
		st.Synced, st.Source, st.LastSync, st.Offset = true, source, now.Round(0), r.ClockOffset
		st.Stratum = min(r.Stratum+1, maxStratum)
		switch res.action {
		case ActionStep:
			st.Steps++
		case ActionSlew:
			st.Slews++
		default:
			st.Ignored++
		}
	})
	level := s.log.Debug
	if first || res.action == ActionStep {
		level = s.log.Info
	}
	level("timesync: synchronised", "server", source, "stratum", r.Stratum, "offset", r.ClockOffset,
		"rtt", r.RTT, "action", res.action)
	s.cfg.OnSync(source, now.Round(0))
	if first {
		// A reboot soon after must find the right time, not the build
		// time: save at once.
		s.save()
	}
	return res
}

// candidate is a server to ask, with the name it came from.
type candidate struct {
	addr netip.Addr
	name string
}

// candidates lists the servers to ask this round: the plan's addresses in
// order, then its first maxQueries names resolved, without duplicates,
// without servers that refused us, never the gizmo's own serving addresses
// (a loop: RFC 5905 §7.3's reference ID exists to catch it), at most
// maxQueries.
func (s *Service) candidates(ctx context.Context, p Plan) []candidate {
	var out []candidate
	seen := map[netip.Addr]bool{}
	for _, a := range p.Serve {
		seen[a.Unmap()] = true
	}
	skipped := 0
	add := func(a netip.Addr, name string) {
		a = a.Unmap()
		if !usableServer(a) || seen[a] {
			return
		}
		s.mu.Lock()
		bad := s.kiss[a]
		s.mu.Unlock()
		if bad {
			return
		}
		seen[a] = true
		if len(out) >= maxQueries {
			skipped++
			return
		}
		out = append(out, candidate{addr: a, name: name})
	}
	for _, a := range p.Servers {
		add(a, "")
	}
	for i, name := range p.Names {
		if len(out) >= maxQueries {
			break
		}
		// Each name may take resolveTimeout: a long list (the DHCPv6
		// Reply's FQDN suboptions, as many as fit in a packet) would
		// stall the round, so only the first maxQueries are tried.
		if i >= maxQueries {
			skipped += len(p.Names) - i
			break
		}
		rctx, cancel := context.WithTimeout(ctx, resolveTimeout)
		addrs, err := s.cfg.Resolver.LookupNetIP(rctx, "ip", name)
		cancel()
		if err != nil {
			s.stats.Add(func(st *Stats) { st.ResolveErrors++ })
			s.log.Debug("timesync: resolve", "name", name, "err", err)
			continue
		}
		for _, a := range addrs {
			add(a, name)
		}
	}
	if skipped > 0 {
		s.stats.Add(func(st *Stats) { st.Skipped += uint64(skipped) })
	}
	return out
}

// usableServer rejects addresses no NTP server can have.
func usableServer(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsMulticast() && !a.IsLoopback() &&
		!(a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255}))
}

// query asks one server.
func (s *Service) query(ctx context.Context, a netip.Addr) (*ntp.Response, error) {
	if s.cfg.query != nil {
		return s.cfg.query(ctx, a)
	}
	opt := ntp.QueryOptions{Timeout: queryTimeout, Dialer: s.cfg.dial}
	if _, system := s.clock.(SystemClock); !system {
		// Offsets are relative to the clock the service sets.
		opt.GetSystemTime = s.clock.Now
	}
	return ntp.QueryWithOptions(netip.AddrPortFrom(a, 123).String(), opt)
}
