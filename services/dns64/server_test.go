package dns64

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestRunServesUDPAndTCPAndRelistens runs the service on loopback: a cache
// miss over UDP (answered from the upstream goroutine), the same name again
// (answered inline from the cache), TCP, and a plan that moves the listener.
func TestRunServesUDPAndTCPAndRelistens(t *testing.T) {
	z := newTestZone()
	s := newTestService(t, z, nil)
	ip := fmt.Sprintf("127.53.%d.%d", 1+rand.IntN(254), 1+rand.IntN(254))
	first := netip.AddrPortFrom(netip.MustParseAddr(ip), uint16(freePort(t, ip)))
	p := testPlan()
	p.Listen = []Listener{{Addr: first, Source: SourceDHCPv4}}
	s.Update(p)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	waitServing(t, first.String(), func() string { return "" })

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

	second := netip.AddrPortFrom(netip.MustParseAddr(ip), uint16(freePort(t, ip)))
	p.Listen = []Listener{{Addr: second, Source: SourceRDNSS}}
	s.Update(p)
	waitServing(t, second.String(), func() string { return "" })
	if _, _, err := (&dns.Client{Timeout: 300 * time.Millisecond}).Exchange(q, first.String()); err == nil {
		t.Errorf("still answering on %s after the plan moved the listener", first)
	}
}
