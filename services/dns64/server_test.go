package dns64

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"codeberg.org/monostack/gizmo/internal/testrun"
)

// TestRunServesUDPAndTCPAndRelistens runs the service on loopback: a cache
// miss over UDP (answered from the upstream goroutine), the same name again
// (answered inline from the cache), TCP, and a plan that moves the listener.
func TestRunServesUDPAndTCPAndRelistens(t *testing.T) {
	z := newTestZone()
	s := newTestService(t, z, nil)
	first := loopbackAddrPort(t)
	p := testPlan()
	serve(t, s, p, Listener{Addr: first, Source: SourceDHCPv4})

	q := new(dns.Msg)
	q.SetQuestion("v4only.example.test.", dns.TypeAAAA)
	for _, network := range []string{"udp", "udp", "tcp"} {
		r, _, err := (&dns.Client{Net: network, Timeout: 2 * time.Second}).Exchange(q, first.String())
		if err != nil {
			t.Fatalf("%s: %v", network, err)
		}
		if len(r.Answer) != 1 || r.Answer[0].(*dns.AAAA).AAAA.String() != "2001:db8:64::c633:6450" {
			t.Fatalf("%s: answer %v", network, r.Answer)
		}
	}
	st := s.Stats()
	if st.BySource[SourceDHCPv4] != 4 || st.Synthesized != 3 || st.CacheHits == 0 {
		t.Errorf("stats after 3 queries (and the readiness probe): by source %v, synthesized %d, cache hits %d",
			st.BySource, st.Synthesized, st.CacheHits)
	}

	second := netip.AddrPortFrom(first.Addr(), uint16(freePort(t, first.Addr().String())))
	p.Listen = []Listener{{Addr: second, Source: SourceRDNSS}}
	s.Update(p)
	waitServing(t, second.String(), func() string { return "" })
	if _, _, err := (&dns.Client{Timeout: 300 * time.Millisecond}).Exchange(q, first.String()); err == nil {
		t.Errorf("still answering on %s after the plan moved the listener", first)
	}
}

// TestRunServesUDPOverIPv6 checks the batch reader on an IPv6 socket: the
// client is known by its address (its policy applies: clientOff on ::1 gets
// no synthesis), the answers reach it, and the third query is answered from
// the memo.
func TestRunServesUDPOverIPv6(t *testing.T) {
	pc, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	ap := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	pc.Close()
	s := newTestService(t, newTestZone(), nil)
	p := testPlan()
	p.Clients[netip.MustParseAddr("::1")] = ClientPolicy{MAC: "02:00:00:00:00:03", DNS64: false}
	serve(t, s, p, Listener{Addr: ap, Source: SourceRDNSS})

	cl := &dns.Client{Timeout: 2 * time.Second}
	for _, tc := range []struct {
		name    string
		answers int
	}{
		{"v4only.example.test.", 0}, // DNS64 off for this host
		{"dual.example.test.", 1},
	} {
		q := new(dns.Msg)
		q.SetQuestion(tc.name, dns.TypeAAAA)
		for i := range 3 {
			r, _, err := cl.Exchange(q, ap.String())
			if err != nil {
				t.Fatalf("%s, query %d: %v", tc.name, i, err)
			}
			if r.Id != q.Id || len(r.Answer) != tc.answers {
				t.Fatalf("%s, query %d: ID %d (want %d), answer %v", tc.name, i, r.Id, q.Id, r.Answer)
			}
		}
	}
	if s.memo.size() == 0 {
		t.Error("nothing in the memo")
	}
	// Six queries and waitServing's probe.
	if h := s.Stats().Hosts["02:00:00:00:00:03"]; h.Queries != 7 || h.ByType["AAAA"] != 6 {
		t.Errorf("host stats %+v, want 7 queries, 6 for AAAA", h)
	}
}

// TestRunReleasesUDPSockets checks that the readers, which sleep in poll(2)
// on threads of their own rather than in Go's netpoller, stop and close
// their sockets when Run returns: the address can then be bound again
// without SO_REUSEPORT, which fails while any of the old sockets is open.
// A query in flight while Run stops must not keep a reader alive either.
func TestRunReleasesUDPSockets(t *testing.T) {
	ap := loopbackAddrPort(t)
	for round := range 3 {
		s := newTestService(t, newTestZone(), nil)
		p := testPlan()
		p.Listen = []Listener{{Addr: ap, Source: SourceRDNSS}}
		s.Update(p)
		stop := testrun.Start(t, "Run", s.Run)
		waitServing(t, ap.String(), func() string { return "" })
		q := new(dns.Msg)
		q.SetQuestion("dual.example.test.", dns.TypeAAAA)
		if _, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(q, ap.String()); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if err := stop(); err != nil {
			t.Fatalf("round %d: Run: %v", round, err)
		}
		pc, err := net.ListenPacket("udp4", ap.String())
		if err != nil {
			t.Fatalf("round %d: UDP socket still bound after Run returned: %v", round, err)
		}
		pc.Close()
	}
}
