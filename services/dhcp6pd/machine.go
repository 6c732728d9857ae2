package dhcp6pd

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// phase is where the client is in the RFC 8415 §18 exchanges.
type phase int

const (
	phaseSolicit phase = iota // §18.2.1, collecting Advertises
	phaseRequest              // §18.2.2
	phaseBound                // waiting for T1
	phaseRenew                // §18.2.4, until T2
	phaseRebind               // §18.2.5, until the valid lifetime ends
	phaseBackoff              // waiting after NoPrefixAvail or a failed Request
)

func (p phase) String() string {
	return [...]string{"solicit", "request", "bound", "renew", "rebind", "backoff"}[p]
}

// Backoff after NoPrefixAvail in a Reply (RFC 8415 §18.2.10.1 leaves the
// retry policy to the client); doubles up to SOL_MAX_RT.
const (
	minNoPrefixBackoff = 10 * time.Second
	maxNoPrefixBackoff = solMaxRT
)

// machine is the client's protocol state. It does no I/O of its own: it
// sends through send, reports through the callbacks and is driven by
// receive and tick with an explicit clock, so that tests and the fuzzer run
// it without sockets or real time. All methods run on one goroutine.
type machine struct {
	log     *slog.Logger
	duid    dhcpv6.DUID
	iaid    [4]byte
	hintLen int
	send    func([]byte) error
	rand    func() float64 // RAND of RFC 8415 §15, in [-0.1, 0.1]
	stats   *counters
	onLease func(Lease)
	onLost  func(netip.Prefix)
	store   func(*Lease)
	// clockTrusted says whether the wall clock can judge a stored lease;
	// nil means it always can.
	clockTrusted func() bool

	phase   phase
	xid     dhcpv6.TransactionID
	txStart time.Time
	rtx     retransmission
	nextTx  time.Time

	// Solicit: the best Advertise so far and the end of the first RT,
	// until which Advertises are collected (§18.2.1).
	best         *dhcpv6.Message
	collectUntil time.Time
	// Request: the Advertise (or, after NoBinding, the lease) requested.
	request *dhcpv6.Message

	backoff      time.Duration
	backoffUntil time.Time

	lease *Lease
	hint  netip.Prefix
	// saved is the stored lease as read, with its wall-clock deadlines,
	// while the clock cannot judge them: m.lease is then the same prefix
	// being confirmed by Rebind, and it has not been reported.
	saved *Lease

	reconfKey  []byte
	lastReplay uint64
	haveReplay bool
}

// refresh re-validates the lease after the link came back (RFC 8415
// §18.2.12): Rebind when bound, otherwise restart discovery at once instead
// of waiting out a long Solicit backoff.
func (m *machine) refresh(now time.Time) {
	if m.phase == phaseRequest {
		// An exchange that has a server's answer in hand is not restarted;
		// its own retransmissions cover a short outage.
		return
	}
	if m.lease != nil {
		m.beginRebind(now)
		return
	}
	m.beginSolicit(now, false)
}

func (m *machine) newTransaction(p phase, rtx retransmission) {
	m.phase = p
	xid, err := dhcpv6.GenerateTransactionID()
	if err != nil {
		// crypto/rand does not fail on Linux; keep going with the old ID.
		m.log.Error("dhcp6pd: transaction ID", "err", err)
	}
	m.xid = xid
	m.rtx = rtx
	m.best = nil
	m.collectUntil = time.Time{}
}

func (m *machine) beginSolicit(now time.Time, delay bool) {
	m.newTransaction(phaseSolicit, retransmission{IRT: solTimeout, MRT: solMaxRT, FirstPositive: true})
	// §18.2.1: delay the first Solicit by a random time in [0, SOL_MAX_DELAY]
	// so that routers rebooting together after a power cut do not
	// synchronise.
	if !delay {
		m.nextTx, m.txStart = now, now
		m.transmit(now)
		return
	}
	m.nextTx = now.Add(scale(solMaxDelay, (m.rand()+0.1)*5))
	m.txStart = m.nextTx
}

func (m *machine) beginRequest(adv *dhcpv6.Message, now time.Time) {
	m.newTransaction(phaseRequest, retransmission{IRT: reqTimeout, MRT: reqMaxRT, MRC: reqMaxRC})
	m.request = adv
	m.nextTx, m.txStart = now, now
	m.transmit(now)
}

func (m *machine) beginRenew(now time.Time) {
	if !now.Before(m.lease.T2) {
		// MRD would be 0, which §15 reads as "no limit".
		m.beginRebind(now)
		return
	}
	m.newTransaction(phaseRenew, retransmission{IRT: renTimeout, MRT: renMaxRT, MRD: m.lease.T2.Sub(now)})
	m.nextTx, m.txStart = now, now
	m.transmit(now)
}

func (m *machine) beginRebind(now time.Time) {
	if !now.Before(m.lease.ValidUntil) {
		m.log.Warn("dhcp6pd: delegated prefix expired", "prefix", m.lease.Prefix)
		m.lose(now)
		m.beginSolicit(now, false)
		return
	}
	m.newTransaction(phaseRebind, retransmission{IRT: rebTimeout, MRT: rebMaxRT, MRD: m.lease.ValidUntil.Sub(now)})
	m.nextTx, m.txStart = now, now
	m.transmit(now)
}

func (m *machine) beginBackoff(now time.Time) {
	if m.backoff == 0 {
		m.backoff = minNoPrefixBackoff
	} else {
		m.backoff = min(2*m.backoff, maxNoPrefixBackoff)
	}
	m.phase = phaseBackoff
	m.backoffUntil = now.Add(m.backoff + scale(m.backoff, m.rand()))
	m.log.Warn("dhcp6pd: backing off before soliciting again", "wait", m.backoffUntil.Sub(now).Round(time.Second))
}

// wake returns when tick must run next.
func (m *machine) wake() time.Time {
	t := farFuture
	if m.lease != nil {
		t = minTime(t, m.lease.ValidUntil)
	}
	switch m.phase {
	case phaseSolicit:
		t = minTime(t, m.nextTx)
		if m.best != nil {
			t = minTime(t, m.collectUntil)
		}
	case phaseRequest, phaseRenew, phaseRebind:
		t = minTime(t, m.nextTx)
	case phaseBound:
		t = minTime(t, m.lease.T1)
	case phaseBackoff:
		t = minTime(t, m.backoffUntil)
	}
	return t
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// tick does whatever is due at now.
func (m *machine) tick(now time.Time) {
	if m.lease != nil && !now.Before(m.lease.ValidUntil) {
		m.log.Warn("dhcp6pd: delegated prefix expired", "prefix", m.lease.Prefix)
		m.lose(now)
		if m.phase != phaseSolicit && m.phase != phaseBackoff {
			m.beginSolicit(now, false)
		}
		return
	}
	switch m.phase {
	case phaseSolicit:
		if m.best != nil && !now.Before(m.collectUntil) {
			m.beginRequest(m.best, now)
			return
		}
		if !now.Before(m.nextTx) {
			m.transmit(now)
		}
	case phaseRequest, phaseRenew, phaseRebind:
		if !now.Before(m.nextTx) {
			m.transmit(now)
		}
	case phaseBound:
		if !now.Before(m.lease.T2) {
			m.beginRebind(now)
		} else if !now.Before(m.lease.T1) {
			m.beginRenew(now)
		}
	case phaseBackoff:
		if !now.Before(m.backoffUntil) {
			m.beginSolicit(now, false)
		}
	}
}

// transmit sends (or re-sends) the message of the current exchange, or
// gives up on it when §15's MRC or MRD is reached.
func (m *machine) transmit(now time.Time) {
	wait, ok := m.rtx.next(m.rand)
	if !ok {
		m.exchangeFailed(now)
		return
	}
	first := m.rtx.sent == 1
	m.nextTx = now.Add(wait)
	if m.phase == phaseSolicit && first {
		m.collectUntil = m.nextTx
	}
	msg, err := m.build(now)
	if err != nil {
		m.log.Error("dhcp6pd: build message", "phase", m.phase, "err", err)
		return
	}
	switch m.phase {
	case phaseSolicit:
		m.stats.Add(func(s *Stats) { s.Solicits++ })
	case phaseRequest:
		m.stats.Add(func(s *Stats) { s.Requests++ })
	case phaseRenew:
		m.stats.Add(func(s *Stats) { s.Renews++ })
	case phaseRebind:
		m.stats.Add(func(s *Stats) { s.Rebinds++ })
	}
	if err := m.send(msg.ToBytes()); err != nil {
		m.stats.Add(func(s *Stats) { s.SendErrors++ })
		m.log.Debug("dhcp6pd: send", "phase", m.phase, "err", err)
	}
}

func (m *machine) exchangeFailed(now time.Time) {
	switch m.phase {
	case phaseRequest:
		m.log.Warn("dhcp6pd: no Reply to Request, soliciting again")
		m.beginSolicit(now, false)
	case phaseRenew:
		// §18.2.5: Rebind at T2 (the Renew's MRD).
		m.beginRebind(now)
	case phaseRebind:
		// §18.2.5: the MRD of Rebind is the end of the valid lifetime.
		if m.lease != nil {
			m.log.Warn("dhcp6pd: no Reply to Rebind before the lease ended", "prefix", m.lease.Prefix)
			m.lose(now)
		}
		m.beginSolicit(now, false)
	default:
		m.beginSolicit(now, false)
	}
}

// build makes the message of the current phase (RFC 8415 §18.2).
func (m *machine) build(now time.Time) (*dhcpv6.Message, error) {
	msg, err := dhcpv6.NewMessage()
	if err != nil {
		return nil, err
	}
	msg.TransactionID = m.xid
	msg.AddOption(dhcpv6.OptClientID(m.duid))
	// §21.9: elapsed time in hundredths of a second, 0 in the first message
	// of an exchange, and 0xffff for anything longer than it can hold.
	elapsed := time.Duration(0)
	if m.rtx.sent > 1 {
		elapsed = min(max(now.Sub(m.txStart), 0), 0xffff*10*time.Millisecond)
	}
	msg.AddOption(dhcpv6.OptElapsedTime(elapsed))
	// §21.7: ask for recursive DNS servers (RFC 3646) and time servers
	// (RFC 5908 §4 says a client MUST ask for OPTION_NTP_SERVER in its
	// ORO; OPTION_SNTP_SERVERS, RFC 4075, for older servers), and the
	// DS-Lite AFTR's name (RFC 6334 §5: a B4 asks for OPTION_AFTR_NAME).
	msg.AddOption(dhcpv6.OptRequestedOption(dhcpv6.OptionDNSRecursiveNameServer, dhcpv6.OptionNTPServer, dhcpv6.OptionSNTPServerList, dhcpv6.OptionAFTRName))
	// §21.20: tell the server we accept Reconfigure, so that it sends us
	// a reconfigure key (§20.4).
	msg.AddOption(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionReconfAccept})

	ia := &dhcpv6.OptIAPD{IaId: m.iaid}
	switch m.phase {
	case phaseSolicit:
		msg.MessageType = dhcpv6.MessageTypeSolicit
		// §18.2.1: a client may hint the prefix it had before, so that
		// the server keeps the delegation stable (RFC 7084 WPD-1..3 and
		// RFC 9096 §3 want stable prefixes).
		if m.hint.IsValid() {
			ia.Options.Add(iaPrefix(m.hint))
		} else if m.hintLen > 0 {
			ia.Options.Add(iaPrefix(netip.PrefixFrom(netip.IPv6Unspecified(), m.hintLen)))
		}
	case phaseRequest:
		msg.MessageType = dhcpv6.MessageTypeRequest
		msg.AddOption(dhcpv6.OptServerID(m.request.Options.ServerID()))
		for _, adv := range m.request.Options.IAPD() {
			if adv.IaId == m.iaid {
				for _, p := range adv.Options.Prefixes() {
					ia.Options.Add(&dhcpv6.OptIAPrefix{Prefix: p.Prefix})
				}
			}
		}
	case phaseRenew, phaseRebind:
		msg.MessageType = dhcpv6.MessageTypeRebind
		if m.phase == phaseRenew {
			msg.MessageType = dhcpv6.MessageTypeRenew
			sid, err := dhcpv6.DUIDFromBytes(m.lease.ServerID)
			if err != nil {
				return nil, err
			}
			msg.AddOption(dhcpv6.OptServerID(sid))
		}
		ia.Options.Add(iaPrefix(m.lease.Prefix))
	default:
		return nil, errors.New("no message in phase " + m.phase.String())
	}
	msg.AddOption(ia)
	return msg, nil
}

func iaPrefix(p netip.Prefix) *dhcpv6.OptIAPrefix {
	ip := p.Addr().As16()
	return &dhcpv6.OptIAPrefix{Prefix: &net.IPNet{IP: net.IP(ip[:]), Mask: net.CIDRMask(p.Bits(), 128)}}
}

// receive handles one packet from the server side; multicast says it was
// sent to a group address rather than to us.
func (m *machine) receive(raw []byte, multicast bool, now time.Time) {
	d, err := dhcpv6.FromBytes(raw)
	if err != nil {
		// The library rejects a whole message for one malformed option;
		// a broken time-server option must not cost the delegation.
		if fixed, n := dropBadTimeOptions(raw); n > 0 {
			if d, err = dhcpv6.FromBytes(fixed); err == nil {
				m.stats.Add(func(s *Stats) { s.MalformedTimeOptions += uint64(n) })
				m.log.Warn("dhcp6pd: ignored malformed NTP server options", "count", n)
			}
		}
	}
	if err != nil {
		m.stats.Add(func(s *Stats) { s.Malformed++ })
		m.log.Debug("dhcp6pd: malformed packet", "err", err)
		return
	}
	msg, ok := d.(*dhcpv6.Message)
	if !ok {
		m.stats.Add(func(s *Stats) { s.Ignored++ })
		return
	}
	// §16: a client discards Advertise, Reply and Reconfigure without our
	// Client Identifier or without a Server Identifier.
	cid := msg.Options.ClientID()
	if cid == nil || !cid.Equal(m.duid) || msg.Options.ServerID() == nil {
		m.stats.Add(func(s *Stats) { s.Ignored++ })
		return
	}
	switch msg.MessageType {
	case dhcpv6.MessageTypeReconfigure:
		if multicast {
			// §16.11: a Reconfigure must be unicast to the client.
			m.stats.Add(func(s *Stats) { s.ReconfigureDropped++ })
			m.log.Warn("dhcp6pd: dropped Reconfigure", "reason", "not unicast")
			return
		}
		m.handleReconfigure(raw, msg, now)
		return
	case dhcpv6.MessageTypeAdvertise:
		if m.phase != phaseSolicit || msg.TransactionID != m.xid {
			m.stats.Add(func(s *Stats) { s.Ignored++ })
			return
		}
		m.stats.Add(func(s *Stats) { s.Advertises++ })
		m.handleAdvertise(msg, now)
	case dhcpv6.MessageTypeReply:
		if msg.TransactionID != m.xid || (m.phase != phaseRequest && m.phase != phaseRenew && m.phase != phaseRebind) {
			m.stats.Add(func(s *Stats) { s.Ignored++ })
			return
		}
		m.stats.Add(func(s *Stats) { s.Replies++ })
		m.handleReply(raw, msg, now)
	default:
		m.stats.Add(func(s *Stats) { s.Ignored++ })
	}
}

func (m *machine) handleAdvertise(msg *dhcpv6.Message, now time.Time) {
	_, _, err := parseLease(msg, m.iaid, m.hint, now)
	if err != nil {
		var se *StatusError
		if errors.As(err, &se) && se.Code == iana.StatusNoPrefixAvail {
			// §18.2.9: ignore an Advertise without prefixes; Solicit keeps
			// backing off exponentially per §15 up to SOL_MAX_RT.
			m.stats.Add(func(s *Stats) { s.NoPrefixAvail++ })
			m.log.Info("dhcp6pd: server has no prefix for us", "status", se.Message)
			return
		}
		m.reject(msg, err)
		return
	}
	pref := msg.Options.Preference()
	if pref == 255 || !now.Before(m.collectUntil) {
		// §18.2.1: preference 255 or an Advertise after the first RT is
		// taken at once.
		m.beginRequest(msg, now)
		return
	}
	if m.best == nil || pref > m.best.Options.Preference() {
		m.best = msg
	}
}

func (m *machine) handleReply(raw []byte, msg *dhcpv6.Message, now time.Time) {
	var prefer netip.Prefix
	if m.lease != nil {
		prefer = m.lease.Prefix
	}
	l, withdrawn, err := parseLease(msg, m.iaid, prefer, now)
	if err != nil {
		var se *StatusError
		switch {
		case errors.As(err, &se) && se.InIA && se.Code == iana.StatusNoBinding:
			m.stats.Add(func(s *Stats) { s.NoBinding++ })
			if m.phase == phaseRenew && m.lease != nil {
				// §18.2.10.1: NoBinding in a Reply to Renew: send a
				// Request for the IA, to the same server.
				m.log.Info("dhcp6pd: server lost our binding, requesting it again", "prefix", m.lease.Prefix)
				m.beginRequest(m.leaseAsAdvertise(msg), now)
				return
			}
			m.log.Info("dhcp6pd: no binding, soliciting again", "phase", m.phase)
			m.beginSolicit(now, false)
		case errors.As(err, &se) && se.InIA && se.Code == iana.StatusNoPrefixAvail:
			m.stats.Add(func(s *Stats) { s.NoPrefixAvail++ })
			if m.phase == phaseRequest {
				m.log.Warn("dhcp6pd: server has no prefix for us", "status", se.Message)
				m.beginBackoff(now)
			}
			// In Renew or Rebind the current lease stays usable until its
			// lifetimes end; keep retransmitting.
		case errors.As(err, &se):
			// §18.2.10: UnspecFail and the like: keep retransmitting,
			// which rate-limits the retries per §15.
			m.log.Info("dhcp6pd: server refused", "phase", m.phase, "err", err)
		default:
			m.reject(msg, err)
			if m.lease != nil {
				for _, w := range withdrawn {
					if w == m.lease.Prefix {
						// §18.2.10.1: valid lifetime 0 withdraws it.
						m.log.Warn("dhcp6pd: server withdrew the delegated prefix", "prefix", w)
						m.lose(now)
						m.beginSolicit(now, false)
						return
					}
				}
			}
			if m.phase == phaseRequest {
				m.beginBackoff(now)
			}
		}
		return
	}
	if key, replay, ok := reconfigureKey(raw); ok {
		m.reconfKey = key
		m.lastReplay, m.haveReplay = replay, true
	}
	if m.lease != nil && m.lease.Prefix != l.Prefix {
		m.log.Warn("dhcp6pd: delegated prefix changed", "old", m.lease.Prefix, "new", l.Prefix)
		m.lose(now)
	}
	m.lease = &l
	m.saved = nil
	m.hint = l.Prefix
	m.backoff = 0
	m.phase = phaseBound
	m.stats.Add(func(s *Stats) { s.Leases++ })
	if _, err := aftrName(msg); err != nil {
		m.stats.Add(func(s *Stats) { s.MalformedAFTRName++ })
		m.log.Warn("dhcp6pd: ignored a malformed AFTR-Name", "err", err)
	}
	m.log.Info("dhcp6pd: delegated prefix",
		"prefix", l.Prefix, "preferred", l.PreferredUntil.Sub(now).Round(time.Second),
		"valid", l.ValidUntil.Sub(now).Round(time.Second), "t1", l.T1.Sub(now).Round(time.Second),
		"t2", l.T2.Sub(now).Round(time.Second), "dns", l.DNS, "aftr", l.AFTRName)
	m.store(m.lease)
	m.onLease(l)
}

// leaseAsAdvertise turns the current lease into the Advertise a Request is
// built from, for the NoBinding-after-Renew case.
func (m *machine) leaseAsAdvertise(reply *dhcpv6.Message) *dhcpv6.Message {
	adv := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeAdvertise}
	adv.AddOption(dhcpv6.OptServerID(reply.Options.ServerID()))
	ia := &dhcpv6.OptIAPD{IaId: m.iaid}
	ia.Options.Add(iaPrefix(m.lease.Prefix))
	adv.AddOption(ia)
	return adv
}

// reject counts and logs a lease that fails validation: one line per
// message, with the reason.
func (m *machine) reject(msg *dhcpv6.Message, err error) {
	reason := reasonOf(err)
	m.stats.Add(func(s *Stats) {
		if s.InvalidLeases == nil {
			s.InvalidLeases = map[string]uint64{}
		}
		s.InvalidLeases[reason]++
	})
	m.log.Warn("dhcp6pd: rejected lease", "msg", msg.MessageType.String(), "reason", reason, "err", err)
}

func (m *machine) lose(now time.Time) {
	if m.lease == nil {
		return
	}
	p := m.lease.Prefix
	// Keep the prefix on disk, ended, as the hint for the next Solicit; a
	// restart must not bring a withdrawn prefix back as valid.
	ended := *m.lease
	ended.PreferredUntil, ended.ValidUntil, ended.T1, ended.T2 = now, now, now, now
	m.store(&ended)
	m.lease = nil
	m.hint = p
	if m.unconfirmed() {
		// Never reported, so nothing to phase out.
		m.saved = nil
		m.stats.Add(func(s *Stats) { s.UnconfirmedDropped++ })
		return
	}
	m.stats.Add(func(s *Stats) { s.Lost++ })
	m.onLost(p)
}

// handleReconfigure implements RFC 8415 §18.2.11 with the authentication
// of §20.4: an unauthenticated Reconfigure would let anyone on the link make
// the gizmo drop or change its prefix, so it is counted and dropped.
func (m *machine) handleReconfigure(raw []byte, msg *dhcpv6.Message, now time.Time) {
	drop := func(why string) {
		m.stats.Add(func(s *Stats) { s.ReconfigureDropped++ })
		m.log.Warn("dhcp6pd: dropped Reconfigure", "reason", why)
	}
	if m.lease == nil || m.phase != phaseBound {
		// §18.2.11: ignore it while not bound or in a transaction.
		drop("not bound or in a transaction")
		return
	}
	if !msg.Options.ServerID().Equal(mustDUID(m.lease.ServerID)) {
		drop("server identifier differs from the lease's")
		return
	}
	replay, err := verifyReconfigure(raw, m.reconfKey)
	if err != nil {
		drop(err.Error())
		return
	}
	if m.haveReplay && replay <= m.lastReplay {
		drop("replay detection value not increasing")
		return
	}
	rm := msg.GetOneOption(dhcpv6.OptionReconfMessage)
	g, ok := rm.(*dhcpv6.OptionGeneric)
	if !ok || len(g.OptionData) != 1 {
		drop("no reconfigure message option")
		return
	}
	m.lastReplay, m.haveReplay = replay, true
	switch dhcpv6.MessageType(g.OptionData[0]) {
	case dhcpv6.MessageTypeRenew:
		m.stats.Add(func(s *Stats) { s.ReconfigureAccepted++ })
		m.log.Info("dhcp6pd: Reconfigure accepted, renewing")
		m.beginRenew(now)
	case dhcpv6.MessageTypeRebind:
		m.stats.Add(func(s *Stats) { s.ReconfigureAccepted++ })
		m.log.Info("dhcp6pd: Reconfigure accepted, rebinding")
		m.beginRebind(now)
	default:
		drop("unsupported reconfigure message type")
	}
}

func mustDUID(b []byte) dhcpv6.DUID {
	d, err := dhcpv6.DUIDFromBytes(b)
	if err != nil {
		return nil
	}
	return d
}
