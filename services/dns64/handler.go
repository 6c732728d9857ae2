package dns64

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// serverPayload is the largest UDP answer we send (RFC 6891 §6.2.5; the
// 2020 DNS flag day value). Larger answers are truncated with TC.
const serverPayload = 1232

// ServeDNS answers one query; it implements dns.Handler.
func (s *Service) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	_, tcp := w.RemoteAddr().(*net.TCPAddr)
	// No deadline here: every upstream lookup is bounded by QueryTimeout.
	resp := s.handle(context.Background(), nil, addrPort(w.RemoteAddr()), addrPort(w.LocalAddr()), tcp, r)
	if resp == nil {
		return
	}
	if err := w.WriteMsg(resp); err != nil {
		s.log.Debug("dns64: write answer", "client", w.RemoteAddr().String(), "err", err)
	}
}

func addrPort(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case *net.TCPAddr:
		ap = a.AddrPort()
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// handle turns a query into the answer to send, or nil to send nothing.
// pass, when not nil, limits it to the cache (see queryPass).
func (s *Service) handle(ctx context.Context, pass *queryPass, client, local netip.AddrPort, tcp bool, r *dns.Msg) *dns.Msg {
	if r.Response {
		// Never answer answers: that is how reflection loops start.
		s.counts.malformed.Add(1)
		return nil
	}
	counted := pass != nil && (pass.counted || pass.probe)
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	opt, optCount := edns(r)
	switch {
	case r.Opcode != dns.OpcodeQuery:
		m.Rcode = dns.RcodeNotImplemented
		return s.finish(pass, m, opt, tcp)
	case len(r.Question) != 1 || optCount > 1:
		// RFC 6891 §6.1.1: more than one OPT is a FORMERR.
		m.Rcode = dns.RcodeFormatError
		return s.finish(pass, m, nil, tcp)
	case opt != nil && opt.Version() != 0:
		// RFC 6891 §6.1.3: unknown EDNS version.
		m.Rcode = dns.RcodeBadVers
		return s.finish(pass, m, opt, tcp)
	}
	q := r.Question[0]
	p := s.current()
	host, dns64 := p.policy(client.Addr())
	hc := s.counts.host(host)
	if pass != nil {
		pass.plan, pass.dns64 = p, dns64
	}
	if !counted {
		s.counts.query(hc, client.Addr(), p.source(local), q.Qtype, dns64)
	}

	switch {
	case q.Qclass != dns.ClassINET:
		m.Rcode = dns.RcodeRefused
		return s.finish(pass, m, opt, tcp)
	case q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR:
		m.Rcode = dns.RcodeRefused
		return s.finish(pass, m, opt, tcp)
	case q.Qtype == dns.TypeOPT || q.Qtype == dns.TypeTSIG || q.Qtype == dns.TypeTKEY ||
		q.Qtype == dns.TypeMAILA || q.Qtype == dns.TypeMAILB:
		// Meta types are not questions (RFC 6895 §3.1).
		m.Rcode = dns.RcodeFormatError
		return s.finish(pass, m, opt, tcp)
	case q.Qtype == dns.TypeANY:
		// RFC 8482 §4.2: answer ANY with one synthesized HINFO.
		m.Answer = []dns.RR{&dns.HINFO{
			Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeHINFO, Class: dns.ClassINET, Ttl: 3600},
			Cpu: "RFC8482",
		}}
		return s.finish(pass, m, opt, tcp)
	}

	name := dns.CanonicalName(q.Name)
	do := opt != nil && opt.Do()
	cd := r.CheckingDisabled
	switch {
	case s.answerLocal(ctx, pass, p, m, name, q.Qtype, dns64, do, cd, hc):
		if pass == nil || !pass.missed && !pass.probe {
			s.counts.local.Add(1)
			if pass != nil {
				pass.effects.local = true
			}
		}
	case q.Qtype == dns.TypeAAAA && dns64 && p.Pref64.IsValid() && !(cd && do):
		// RFC 6147 §5.5: a DNSSEC-aware client that does its own validation
		// (CD=1, DO=1) gets the real answer; everyone else may get synthesis.
		s.synthesize(ctx, pass, p, m, name, do, cd, hc)
	default:
		s.forwardInto(ctx, pass, p, m, name, q.Qtype, do, cd)
	}
	if pass != nil && pass.missed {
		return m // discarded: the query is answered again, upstream allowed
	}
	return s.finish(pass, m, opt, tcp)
}

// edns returns the query's OPT record and how many there are.
func edns(r *dns.Msg) (*dns.OPT, int) {
	var opt *dns.OPT
	n := 0
	for _, rr := range r.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			if opt == nil {
				opt = o
			}
			n++
		}
	}
	return opt, n
}

// finish adds our OPT when the client used EDNS (RFC 6891 §7), echoing DO
// (RFC 3225 §3), and truncates UDP answers to the client's payload size or
// 512 bytes without EDNS (RFC 1035 §4.2.1), setting TC.
func (s *Service) finish(pass *queryPass, m *dns.Msg, opt *dns.OPT, tcp bool) *dns.Msg {
	size := dns.MinMsgSize
	if opt != nil {
		m.SetEdns0(serverPayload, opt.Do())
		size = min(int(opt.UDPSize()), serverPayload)
	}
	if tcp {
		size = dns.MaxMsgSize
	}
	m.Truncate(size)
	if !pass.quiet() {
		s.counts.finished(m.Rcode, m.Truncated)
	}
	return m
}

// synthesizedFor counts a synthesized answer, and notes it for the memo.
func (s *Service) synthesizedFor(pass *queryPass, hc *hostCounters, name string) {
	if pass.quiet() {
		return
	}
	s.counts.synthesizedFor(hc, name)
	if pass != nil {
		pass.effects.synthesized = name
	}
}

// forwardInto answers from the cache or the upstreams, unchanged.
func (s *Service) forwardInto(ctx context.Context, pass *queryPass, p *compiledPlan, m *dns.Msg, name string, qtype uint16, do, cd bool) {
	up, age, err := s.lookup(ctx, pass, p, name, qtype, do, cd)
	if err != nil {
		s.log.Debug("dns64: upstream lookup failed", "name", name, "type", dns.TypeToString[qtype], "err", err)
		m.Rcode = dns.RcodeServerFailure
		return
	}
	copyAnswer(m, up, age, do)
}

// copyAnswer fills m from an upstream answer with its TTLs reduced by the
// time it spent in the cache.
func copyAnswer(m, up *dns.Msg, age time.Duration, do bool) {
	m.Rcode = up.Rcode
	// We do not validate: AD is passed on only to clients that can make
	// sense of it (RFC 6840 §5.8).
	m.AuthenticatedData = up.AuthenticatedData && do
	m.Answer = aged(up.Answer, age)
	m.Ns = aged(up.Ns, age)
	m.Extra = aged(up.Extra, age)
}

// aged returns copies of rrs with age subtracted from their TTLs.
func aged(rrs []dns.RR, age time.Duration) []dns.RR {
	if len(rrs) == 0 {
		return nil
	}
	sec := uint32(age / time.Second)
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		c := dns.Copy(rr)
		h := c.Header()
		if h.Ttl > sec {
			h.Ttl -= sec
		} else {
			h.Ttl = 0
		}
		out[i] = c
	}
	return out
}
