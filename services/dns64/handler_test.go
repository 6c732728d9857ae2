package dns64

import (
	"context"
	"fmt"
	"hash/maphash"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

var (
	testPref64   = netip.MustParsePrefix("2001:db8:64::/96")
	testExclude  = netip.MustParsePrefix("2001:db8:bad::/48")
	testUpstream = netip.MustParseAddrPort("192.0.2.53:53")
	clientOn     = netip.MustParseAddrPort("[2001:db8:1000::100]:40000")
	clientOff    = netip.MustParseAddrPort("[2001:db8:1000::200]:40000")
	listenRDNSS  = netip.MustParseAddrPort("[2001:db8:1000::53]:53")
	listenDHCP4  = netip.MustParseAddrPort("203.0.113.129:53")
)

func testPlan() Plan {
	return Plan{
		Pref64:    testPref64,
		Exclude:   []netip.Prefix{testExclude},
		Upstreams: []netip.AddrPort{testUpstream},
		Listen: []Listener{
			{Addr: listenRDNSS, Source: SourceRDNSS},
			{Addr: listenDHCP4, Source: SourceDHCPv4},
		},
		Clients: map[netip.Addr]ClientPolicy{
			clientOn.Addr():  {MAC: "02:00:00:00:00:01", DNS64: true},
			clientOff.Addr(): {MAC: "02:00:00:00:00:02", DNS64: false},
		},
		DefaultDNS64: true,
		LocalNames: map[string][]netip.Addr{
			"laptop.home.arpa.":   {netip.MustParseAddr("203.0.113.130"), netip.MustParseAddr("2001:db8:1000::100")},
			"printer.home.arpa":   {netip.MustParseAddr("203.0.113.131")},
			"a.b.deep.home.arpa.": {netip.MustParseAddr("203.0.113.132")},
			"gadget.home.arpa.":   {netip.MustParseAddr("203.0.113.133")},
		},
		LocalSynthesized: map[string][]netip.Addr{
			"gadget.home.arpa.": {netip.MustParseAddr("2001:db8:64::cb00:7185")},
		},
		LocalNetworks: []netip.Prefix{netip.MustParsePrefix("203.0.113.128/25"), netip.MustParsePrefix("2001:db8:1000::/64")},
	}
}

func newTestService(t *testing.T, z *testZone, mod func(*Config)) *Service {
	t.Helper()
	cfg := Config{Exchange: z.exchange, UpstreamTimeout: 50 * time.Millisecond, QueryTimeout: 150 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Update(testPlan())
	return s
}

type query struct {
	name   string
	qtype  uint16
	client netip.AddrPort
	local  netip.AddrPort
	edns   bool
	size   uint16
	do, cd bool
	tcp    bool
}

// msg is the query's message: its question, the CD bit, and EDNS(0) with
// the DO bit and a UDP size of q.size (1232 unless set) when it asks for
// either.
func (q query) msg() *dns.Msg {
	r := new(dns.Msg)
	r.SetQuestion(q.name, q.qtype)
	r.CheckingDisabled = q.cd
	if q.edns || q.do {
		size := q.size
		if size == 0 {
			size = 1232
		}
		r.SetEdns0(size, q.do)
	}
	return r
}

func ask(t *testing.T, s *Service, q query) *dns.Msg {
	t.Helper()
	r := q.msg()
	if !q.client.IsValid() {
		q.client = clientOn
	}
	if !q.local.IsValid() {
		q.local = listenRDNSS
	}
	m := s.handle(context.Background(), nil, q.client, q.local, q.tcp, r)
	if m == nil {
		return nil
	}
	// Through the wire, as a client would see it.
	wire, err := m.Pack()
	if err != nil {
		t.Fatalf("pack answer: %v", err)
	}
	out := new(dns.Msg)
	if err := out.Unpack(wire); err != nil {
		t.Fatalf("unpack answer: %v", err)
	}
	if out.Id != r.Id {
		t.Fatalf("answer ID %d, query ID %d", out.Id, r.Id)
	}
	return out
}

// rrStrings renders a section without the OPT record, for comparison.
func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, strings.ReplaceAll(rr.String(), "\t", " "))
	}
	return out
}

func TestRFC6147Synthesis(t *testing.T) {
	for _, tc := range []struct {
		name   string
		q      query
		rcode  int
		answer []string
		extra  []string
	}{
		{"RFC 6147 5.1.1: a real AAAA is returned unchanged", query{name: "dual.example.test.", qtype: dns.TypeAAAA},
			dns.RcodeSuccess, []string{"dual.example.test. 300 IN AAAA 2001:db8:ffff::10"}, nil},
		{"RFC 6147 5.1.6: an A-only name gets a synthesized AAAA", query{name: "v4only.example.test.", qtype: dns.TypeAAAA},
			dns.RcodeSuccess, []string{"v4only.example.test. 300 IN AAAA 2001:db8:64::c633:6450"}, nil},
		{"RFC 6147 5.1.6: every A record is synthesized", query{name: "multi.example.test.", qtype: dns.TypeAAAA},
			dns.RcodeSuccess, []string{
				"multi.example.test. 300 IN AAAA 2001:db8:64::c633:6401",
				"multi.example.test. 300 IN AAAA 2001:db8:64::c633:6402",
				"multi.example.test. 300 IN AAAA 2001:db8:64::c633:6403"}, nil},
		{"RFC 6147 5.1.2: NXDOMAIN passes through", query{name: "nosuch.example.test.", qtype: dns.TypeAAAA},
			dns.RcodeNameError, nil, nil},
		{"RFC 6147 5.1.2: NXDOMAIN for AAAA passes through even with an A record", query{name: nameNXAAAA, qtype: dns.TypeAAAA},
			dns.RcodeNameError, nil, nil},
		{"RFC 6147 5.1.2: SERVFAIL counts as empty", query{name: nameServfailAAAA, qtype: dns.TypeAAAA},
			dns.RcodeSuccess, []string{"servfail-aaaa.example.test. 300 IN AAAA 2001:db8:64::c633:6458"}, nil},
		{"RFC 6147 5.1.2: REFUSED counts as empty", query{name: nameRefusedAAAA, qtype: dns.TypeAAAA},
			dns.RcodeSuccess, []string{"refused-aaaa.example.test. 300 IN AAAA 2001:db8:64::c633:6459"}, nil},
		{"RFC 6147 5.1.2: NOTIMP counts as empty", query{name: nameFormerrAAAA, qtype: dns.TypeAAAA},
			dns.RcodeSuccess, []string{"formerr-aaaa.example.test. 300 IN AAAA 2001:db8:64::c633:645b"}, nil},
		{"RFC 6147 5.1.3: an AAAA timeout counts as empty", query{name: nameTimeoutAAAA, qtype: dns.TypeAAAA},
			dns.RcodeSuccess, []string{"timeout-aaaa.example.test. 300 IN AAAA 2001:db8:64::c633:645c"}, nil},
		{"RFC 6147 5.1.3: no answer at all is a fast SERVFAIL", query{name: nameTimeout, qtype: dns.TypeAAAA},
			dns.RcodeServerFailure, nil, nil},
		{"RFC 6147 5.1.2: SERVFAIL for both passes on SERVFAIL", query{name: nameServfail, qtype: dns.TypeAAAA},
			dns.RcodeServerFailure, nil, nil},
		{"RFC 6147 5.1.4: ::ffff:0:0/96 is never returned, the A record is synthesized", query{name: "mapped.example.test.", qtype: dns.TypeAAAA},
			dns.RcodeSuccess, []string{"mapped.example.test. 300 IN AAAA 2001:db8:64::c633:6450"}, nil},
		{"RFC 6147 5.1.4: an AAAA in a configured excluded range counts as empty", query{name: "excluded.example.test.", qtype: dns.TypeAAAA},
			dns.RcodeSuccess, []string{"excluded.example.test. 300 IN AAAA 2001:db8:64::c633:6451"}, nil},
		{"RFC 6147 5.1.4: excluded AAAA records are dropped beside real ones", query{name: "mixed-excluded.example.test.", qtype: dns.TypeAAAA},
			dns.RcodeSuccess, []string{"mixed-excluded.example.test. 300 IN AAAA 2001:db8:ffff::20"}, nil},
		{"RFC 6147 5.1.5: the CNAME chain is kept", query{name: "chain.example.test.", qtype: dns.TypeAAAA},
			dns.RcodeSuccess, []string{
				"chain.example.test. 120 IN CNAME v4only.example.test.",
				"v4only.example.test. 300 IN AAAA 2001:db8:64::c633:6450"}, nil},
		{"RFC 6147 5.1.5: a two-hop CNAME chain is kept", query{name: "chain2.example.test.", qtype: dns.TypeAAAA},
			dns.RcodeSuccess, []string{
				"chain2.example.test. 240 IN CNAME chain.example.test.",
				"chain.example.test. 120 IN CNAME v4only.example.test.",
				"v4only.example.test. 300 IN AAAA 2001:db8:64::c633:6450"}, nil},
		{"RFC 6147 5.1.5: a CNAME to a dual-stack name returns its real AAAA", query{name: "chain-dual.example.test.", qtype: dns.TypeAAAA},
			dns.RcodeSuccess, []string{
				"chain-dual.example.test. 120 IN CNAME dual.example.test.",
				"dual.example.test. 300 IN AAAA 2001:db8:ffff::10"}, nil},
		{"RFC 6147 5.1.5: the DNAME and its CNAME are kept", query{name: "host.sub.example.test.", qtype: dns.TypeAAAA},
			dns.RcodeSuccess, []string{
				"sub.example.test. 500 IN DNAME other.example.test.",
				"host.sub.example.test. 500 IN CNAME host.other.example.test.",
				"host.other.example.test. 300 IN AAAA 2001:db8:64::c633:645a"}, nil},
		{"RFC 6147 5.1.2: a CNAME to NXDOMAIN passes through", query{name: "chain-nx.example.test.", qtype: dns.TypeAAAA},
			dns.RcodeNameError, []string{"chain-nx.example.test. 120 IN CNAME missing.example.test."}, nil},
		{"RFC 6147 5.1.7: TTL is the SOA's when the A TTL is longer", query{name: "long-ttl.example.test.", qtype: dns.TypeAAAA},
			dns.RcodeSuccess, []string{"long-ttl.example.test. 900 IN AAAA 2001:db8:64::c633:6455"}, nil},
		{"RFC 6147 5.1.7: TTL is the A TTL when it is shorter", query{name: "short-ttl.example.test.", qtype: dns.TypeAAAA},
			dns.RcodeSuccess, []string{"short-ttl.example.test. 30 IN AAAA 2001:db8:64::c633:6454"}, nil},
		{"RFC 6147 5.1.7: TTL is at most 600 without an SOA", query{name: nameNoSOA, qtype: dns.TypeAAAA},
			dns.RcodeSuccess, []string{"nosoa.example.test. 600 IN AAAA 2001:db8:64::c633:645d"}, nil},
		{"RFC 6147 5.1.6: no A record either gives the empty answer", query{name: "txt-only.example.test.", qtype: dns.TypeAAAA},
			dns.RcodeSuccess, nil, nil},
		{"RFC 6147 5.3.2: the additional section passes through", query{name: "withextra.example.test.", qtype: dns.TypeAAAA},
			dns.RcodeSuccess, []string{"withextra.example.test. 300 IN AAAA 2001:db8:64::c633:6457"},
			[]string{"ns.example.test. 3600 IN A 192.0.2.53"}},
		{"RFC 6147 5.5: CD=1 DO=1 gets no synthesis", query{name: "v4only.example.test.", qtype: dns.TypeAAAA, do: true, cd: true},
			dns.RcodeSuccess, nil, nil},
		{"RFC 6147 5.5: CD=1 without DO is synthesized", query{name: "v4only.example.test.", qtype: dns.TypeAAAA, cd: true},
			dns.RcodeSuccess, []string{"v4only.example.test. 300 IN AAAA 2001:db8:64::c633:6450"}, nil},
		{"RFC 6147 5.5: CD=0 DO=1 is synthesized", query{name: "secure.example.test.", qtype: dns.TypeAAAA, do: true},
			dns.RcodeSuccess, []string{"secure.example.test. 300 IN AAAA 2001:db8:64::c633:645f"}, nil},
		{"RFC 6147 5.1.1: a DNS64-off host gets the plain answer", query{name: "v4only.example.test.", qtype: dns.TypeAAAA, client: clientOff},
			dns.RcodeSuccess, nil, nil},
		{"RFC 6147 5.1: A queries are never changed", query{name: "v4only.example.test.", qtype: dns.TypeA},
			dns.RcodeSuccess, []string{"v4only.example.test. 300 IN A 198.51.100.80"}, nil},
		{"RFC 6147 5.3.3: other types pass through", query{name: "mx.example.test.", qtype: dns.TypeMX},
			dns.RcodeSuccess, []string{"mx.example.test. 300 IN MX 10 v4only.example.test."}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestService(t, newTestZone(), nil)
			m := ask(t, s, tc.q)
			if m.Rcode != tc.rcode {
				t.Fatalf("rcode %s, want %s\n%v", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode], m)
			}
			if diff := cmp.Diff(tc.answer, rrStrings(m.Answer)); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.extra, rrStrings(m.Extra)); diff != "" {
				t.Errorf("additional (-want +got):\n%s", diff)
			}
			if tc.q.do && m.AuthenticatedData && tc.q.qtype == dns.TypeAAAA && len(m.Answer) > 0 {
				t.Errorf("RFC 6147 5.5: synthesized answer has AD set")
			}
		})
	}
}

func TestRFC6147NegativeSOAIsKept(t *testing.T) {
	s := newTestService(t, newTestZone(), nil)
	m := ask(t, s, query{name: "txt-only.example.test.", qtype: dns.TypeAAAA})
	if len(m.Ns) != 1 || m.Ns[0].Header().Rrtype != dns.TypeSOA {
		t.Fatalf("RFC 2308 2.2: NODATA answer without its SOA: %v", m)
	}
}

func TestRFC6840ADOnlyForDOClients(t *testing.T) {
	s := newTestService(t, newTestZone(), nil)
	if m := ask(t, s, query{name: nameSecure, qtype: dns.TypeA, do: true}); !m.AuthenticatedData {
		t.Errorf("DO=1: upstream AD not passed on")
	}
	if m := ask(t, s, query{name: nameSecure, qtype: dns.TypeA}); m.AuthenticatedData {
		t.Errorf("DO=0: AD set")
	}
}

func TestRFC6052WellKnownPrefixSkipsPrivate(t *testing.T) {
	s := newTestService(t, newTestZone(), nil)
	p := testPlan()
	p.Pref64 = WellKnownPrefix
	s.Update(p)
	if m := ask(t, s, query{name: "private.example.test.", qtype: dns.TypeAAAA}); len(m.Answer) != 0 {
		t.Errorf("RFC 6052 3.1: 10.1.2.3 synthesized under 64:ff9b::/96: %v", m.Answer)
	}
}

func TestPolicyChangeTakesEffectAtOnce(t *testing.T) {
	s := newTestService(t, newTestZone(), nil)
	q := query{name: "v4only.example.test.", qtype: dns.TypeAAAA, client: clientOn}
	if m := ask(t, s, q); len(m.Answer) != 1 {
		t.Fatalf("DNS64 on: %v", m.Answer)
	}
	p := testPlan()
	p.Clients[clientOn.Addr()] = ClientPolicy{MAC: "02:00:00:00:00:01", DNS64: false}
	s.Update(p)
	if m := ask(t, s, q); len(m.Answer) != 0 {
		t.Fatalf("DNS64 switched off, still synthesized: %v", m.Answer)
	}
	p.Clients[clientOn.Addr()] = ClientPolicy{MAC: "02:00:00:00:00:01", DNS64: true}
	s.Update(p)
	if m := ask(t, s, q); len(m.Answer) != 1 {
		t.Fatalf("DNS64 switched on again: %v", m.Answer)
	}
}

func TestLocalAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		q      query
		rcode  int
		answer []string
	}{
		{"RFC 8880 7.2: ipv4only.arpa A answered locally", query{name: "ipv4only.arpa.", qtype: dns.TypeA},
			dns.RcodeSuccess, []string{"ipv4only.arpa. 3600 IN A 192.0.0.170", "ipv4only.arpa. 3600 IN A 192.0.0.171"}},
		{"RFC 8880 7.2: ipv4only.arpa AAAA synthesized with the active prefix", query{name: "IPv4only.ARPA.", qtype: dns.TypeAAAA},
			dns.RcodeSuccess, []string{"ipv4only.arpa. 3600 IN AAAA 2001:db8:64::c000:aa", "ipv4only.arpa. 3600 IN AAAA 2001:db8:64::c000:ab"}},
		{"RFC 8880 7.2: ipv4only.arpa AAAA is empty without DNS64", query{name: "ipv4only.arpa.", qtype: dns.TypeAAAA, client: clientOff},
			dns.RcodeSuccess, nil},
		{"RFC 8880 7.2: names below ipv4only.arpa do not exist", query{name: "x.ipv4only.arpa.", qtype: dns.TypeA},
			dns.RcodeNameError, nil},
		{"RFC 8375: a local name answers A", query{name: "laptop.home.arpa.", qtype: dns.TypeA},
			dns.RcodeSuccess, []string{"laptop.home.arpa. 60 IN A 203.0.113.130"}},
		{"RFC 8375: a local name answers AAAA, never synthesized", query{name: "Laptop.Home.Arpa.", qtype: dns.TypeAAAA},
			dns.RcodeSuccess, []string{"laptop.home.arpa. 60 IN AAAA 2001:db8:1000::100"}},
		{"RFC 8375: a v4-only local name has no AAAA", query{name: "printer.home.arpa.", qtype: dns.TypeAAAA},
			dns.RcodeSuccess, nil},
		{"RFC 6147 5.1.7: a v4-only local host the plan synthesized has an AAAA for DNS64 clients", query{name: "gadget.home.arpa.", qtype: dns.TypeAAAA},
			dns.RcodeSuccess, []string{"gadget.home.arpa. 60 IN AAAA 2001:db8:64::cb00:7185"}},
		{"RFC 6147 5.1: no synthesized local AAAA without DNS64", query{name: "gadget.home.arpa.", qtype: dns.TypeAAAA, client: clientOff},
			dns.RcodeSuccess, nil},
		{"RFC 6147 5.1: the A record of a synthesized local name is unchanged", query{name: "gadget.home.arpa.", qtype: dns.TypeA, client: clientOff},
			dns.RcodeSuccess, []string{"gadget.home.arpa. 60 IN A 203.0.113.133"}},
		{"RFC 6147 5.3.1: the synthesized local AAAA's reverse name is the host's, answered locally", query{name: "5.8.1.7.0.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.4.6.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", qtype: dns.TypePTR},
			dns.RcodeSuccess, []string{"5.8.1.7.0.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.4.6.0.0.8.b.d.0.1.0.0.2.ip6.arpa. 60 IN PTR gadget.home.arpa."}},
		{"RFC 8375: an unknown local name is NXDOMAIN, not sent upstream", query{name: "nobody.home.arpa.", qtype: dns.TypeA},
			dns.RcodeNameError, nil},
		{"RFC 8020: an empty non-terminal is NODATA", query{name: "deep.home.arpa.", qtype: dns.TypeA},
			dns.RcodeSuccess, nil},
		{"RFC 8375: reverse name of a LAN IPv4 address", query{name: "130.113.0.203.in-addr.arpa.", qtype: dns.TypePTR},
			dns.RcodeSuccess, []string{"130.113.0.203.in-addr.arpa. 60 IN PTR laptop.home.arpa."}},
		{"RFC 8375: reverse name of a LAN IPv6 address", query{name: "0.0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.8.b.d.0.1.0.0.2.ip6.arpa.", qtype: dns.TypePTR},
			dns.RcodeSuccess, []string{"0.0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.8.b.d.0.1.0.0.2.ip6.arpa. 60 IN PTR laptop.home.arpa."}},
		{"RFC 6303: unknown LAN reverse names stay local", query{name: "200.113.0.203.in-addr.arpa.", qtype: dns.TypePTR},
			dns.RcodeNameError, nil},
		{"RFC 6147 5.3.1: PTR in the NAT64 prefix is a CNAME into in-addr.arpa, followed", query{name: "0.5.4.6.3.3.6.c.0.0.0.0.0.0.0.0.0.0.0.0.4.6.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", qtype: dns.TypePTR},
			dns.RcodeSuccess, []string{
				"0.5.4.6.3.3.6.c.0.0.0.0.0.0.0.0.0.0.0.0.4.6.0.0.8.b.d.0.1.0.0.2.ip6.arpa. 600 IN CNAME 80.100.51.198.in-addr.arpa.",
				"80.100.51.198.in-addr.arpa. 300 IN PTR v4only.example.test."}},
		{"RFC 8482 4.2: ANY gets one HINFO", query{name: "v4only.example.test.", qtype: dns.TypeANY},
			dns.RcodeSuccess, []string{"v4only.example.test. 3600 IN HINFO \"RFC8482\" \"\""}},
		{"RFC 5936 4.1: zone transfers are refused", query{name: "example.test.", qtype: dns.TypeAXFR},
			dns.RcodeRefused, nil},
		{"RFC 6895 3.1: a meta type is not a question", query{name: "example.test.", qtype: dns.TypeOPT},
			dns.RcodeFormatError, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			z := newTestZone()
			s := newTestService(t, z, nil)
			m := ask(t, s, tc.q)
			if m.Rcode != tc.rcode {
				t.Fatalf("rcode %s, want %s\n%v", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode], m)
			}
			if diff := cmp.Diff(tc.answer, rrStrings(m.Answer)); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			if (strings.HasSuffix(dns.CanonicalName(tc.q.name), "home.arpa.") || strings.Contains(tc.q.name, "ipv4only")) && z.queries.Load() != 0 {
				t.Errorf("local name sent upstream")
			}
		})
	}
}

// The existing-network mode puts the NAT64 prefix inside a LAN network
// (its on-link /64): reverse names there are still synthesized addresses'.
func TestPref64PTRInsideLocalNetwork(t *testing.T) {
	z := newTestZone()
	s := newTestService(t, z, nil)
	p := testPlan()
	p.LocalNetworks = append(p.LocalNetworks, netip.PrefixFrom(testPref64.Addr(), 64))
	s.Update(p)
	name := "0.5.4.6.3.3.6.c.0.0.0.0.0.0.0.0.0.0.0.0.4.6.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
	m := ask(t, s, query{name: name, qtype: dns.TypePTR})
	want := []string{name + " 600 IN CNAME 80.100.51.198.in-addr.arpa.", "80.100.51.198.in-addr.arpa. 300 IN PTR v4only.example.test."}
	if diff := cmp.Diff(want, rrStrings(m.Answer)); m.Rcode != dns.RcodeSuccess || diff != "" {
		t.Errorf("RFC 6147 5.3.1: %s, answer (-want +got):\n%s", dns.RcodeToString[m.Rcode], diff)
	}
	// The rest of that /64 stays local (RFC 6303).
	other := "1.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.0.0.0.4.6.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
	if m := ask(t, s, query{name: other, qtype: dns.TypePTR}); m.Rcode != dns.RcodeNameError {
		t.Errorf("RFC 6303: %s outside the NAT64 prefix: %s, want NXDOMAIN", other, dns.RcodeToString[m.Rcode])
	}
}

func TestRFC1035TruncationAndTCP(t *testing.T) {
	s := newTestService(t, newTestZone(), nil)
	for _, tc := range []struct {
		name string
		q    query
		tc   bool
	}{
		{"RFC 1035 4.2.1: 512 bytes without EDNS", query{name: "big.example.test.", qtype: dns.TypeAAAA}, true},
		{"RFC 6891 6.2.5: the client's EDNS size", query{name: "big.example.test.", qtype: dns.TypeAAAA, edns: true, size: 4096}, true},
		{"RFC 7766 5: TCP carries the whole answer", query{name: "big.example.test.", qtype: dns.TypeAAAA, tcp: true}, false},
		{"RFC 1035 4.2.1: A answer truncated too", query{name: "big.example.test.", qtype: dns.TypeA}, true},
		{"RFC 1035 4.2.1: TXT answer truncated", query{name: "bigtxt.example.test.", qtype: dns.TypeTXT, edns: true, size: 1232}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := ask(t, s, tc.q)
			if m.Truncated != tc.tc {
				t.Fatalf("TC=%v, want %v (%d answers)", m.Truncated, tc.tc, len(m.Answer))
			}
			m.Compress = true
			wire, _ := m.Pack()
			limit := 512
			if tc.q.edns {
				limit = min(int(tc.q.size), serverPayload)
			}
			if !tc.q.tcp && len(wire) > limit {
				t.Errorf("UDP answer of %d bytes, limit %d", len(wire), limit)
			}
			if tc.q.tcp && len(m.Answer) != 60 {
				t.Errorf("TCP answer has %d records, want 60", len(m.Answer))
			}
		})
	}
}

func TestMalformedQueries(t *testing.T) {
	s := newTestService(t, newTestZone(), nil)
	two := new(dns.Msg)
	two.SetQuestion("a.example.test.", dns.TypeA)
	two.Question = append(two.Question, two.Question[0])
	if m := s.handle(context.Background(), nil, clientOn, listenRDNSS, false, two); m == nil || m.Rcode != dns.RcodeFormatError {
		t.Errorf("two questions: %v", m)
	}
	badvers := new(dns.Msg)
	badvers.SetQuestion("a.example.test.", dns.TypeA)
	badvers.SetEdns0(1232, false)
	badvers.IsEdns0().SetVersion(1)
	if m := s.handle(context.Background(), nil, clientOn, listenRDNSS, false, badvers); m == nil || m.Rcode != dns.RcodeBadVers {
		t.Errorf("RFC 6891 6.1.3: EDNS version 1: %v", m)
	}
	resp := new(dns.Msg)
	resp.SetQuestion("a.example.test.", dns.TypeA)
	resp.Response = true
	if m := s.handle(context.Background(), nil, clientOn, listenRDNSS, false, resp); m != nil {
		t.Errorf("answered a response: %v", m)
	}
	ch := new(dns.Msg)
	ch.SetQuestion("version.bind.", dns.TypeTXT)
	ch.Question[0].Qclass = dns.ClassCHAOS
	if m := s.handle(context.Background(), nil, clientOn, listenRDNSS, false, ch); m == nil || m.Rcode != dns.RcodeRefused {
		t.Errorf("CHAOS class: %v", m)
	}
	notify := new(dns.Msg)
	notify.SetNotify("example.test.")
	if m := s.handle(context.Background(), nil, clientOn, listenRDNSS, false, notify); m == nil || m.Rcode != dns.RcodeNotImplemented {
		t.Errorf("NOTIFY: %v", m)
	}
	if st := s.Stats(); st.Malformed != 4 || st.Refused != 1 {
		t.Errorf("Malformed=%d Refused=%d, want 4 and 1", st.Malformed, st.Refused)
	}
}

func TestCacheSharedAcrossClients(t *testing.T) {
	z := newTestZone()
	s := newTestService(t, z, nil)
	ask(t, s, query{name: "v4only.example.test.", qtype: dns.TypeAAAA, client: clientOn})
	ask(t, s, query{name: "nosuch.example.test.", qtype: dns.TypeA, client: clientOn})
	before := z.queries.Load()
	// The other client has DNS64 off: same cached upstream data, no synthesis.
	if m := ask(t, s, query{name: "v4only.example.test.", qtype: dns.TypeAAAA, client: clientOff}); len(m.Answer) != 0 {
		t.Errorf("DNS64-off client got %v", m.Answer)
	}
	ask(t, s, query{name: "v4only.example.test.", qtype: dns.TypeA, client: clientOff})
	if m := ask(t, s, query{name: "nosuch.example.test.", qtype: dns.TypeA, client: clientOff}); m.Rcode != dns.RcodeNameError {
		t.Errorf("RFC 2308 5: cached NXDOMAIN: %v", m)
	}
	if got := z.queries.Load(); got != before {
		t.Errorf("%d more upstream queries, want none (all cached)", got-before)
	}
	st := s.Stats()
	if st.CacheHits < 3 || st.CacheEntries < 3 {
		t.Errorf("cache stats: hits %d entries %d", st.CacheHits, st.CacheEntries)
	}
}

func TestRFC2308ZeroTTLIsNotCached(t *testing.T) {
	z := newTestZone()
	s := newTestService(t, z, nil)
	ask(t, s, query{name: "zero-ttl.example.test.", qtype: dns.TypeA})
	before := z.queries.Load()
	ask(t, s, query{name: "zero-ttl.example.test.", qtype: dns.TypeA})
	if z.queries.Load() == before {
		t.Errorf("TTL 0 answer was cached")
	}
}

func TestCacheMemoryBound(t *testing.T) {
	c := newCache(64 << 10)
	now := time.Unix(1000, 0)
	m := new(dns.Msg)
	m.SetQuestion("x.example.test.", dns.TypeA)
	rr, _ := dns.NewRR("x.example.test. 300 IN A 192.0.2.1")
	m.Answer = []dns.RR{rr}
	for i := range 5000 {
		c.put(cacheKey{name: strings.Repeat("a", i%50) + string(rune('a'+i%26)) + ".example.test." + strings.Repeat("b", i/26%20), qtype: dns.TypeA}, m, time.Minute, now)
	}
	if _, bytes := c.size(); bytes > 64<<10 {
		t.Errorf("cache holds %d bytes, bound 64 KiB", bytes)
	}
	k := cacheKey{name: "fresh.example.test.", qtype: dns.TypeA}
	c.put(k, m, time.Minute, now)
	if _, _, _, ok := c.get(k, now.Add(59*time.Second)); !ok {
		t.Errorf("fresh entry evicted")
	}
	if _, _, _, ok := c.get(k, now.Add(61*time.Second)); ok {
		t.Errorf("RFC 1035 3.2.1: entry served after its TTL")
	}
}

func TestCachedAnswerTTLCountsDown(t *testing.T) {
	c := newCache(1 << 20)
	now := time.Unix(1000, 0)
	m := new(dns.Msg)
	rr, _ := dns.NewRR("x.example.test. 300 IN A 192.0.2.1")
	m.Answer = []dns.RR{rr}
	k := cacheKey{name: "x.example.test.", qtype: dns.TypeA}
	c.put(k, m, 300*time.Second, now)
	got, age, _, ok := c.get(k, now.Add(100*time.Second))
	if !ok {
		t.Fatal("miss")
	}
	if ttl := aged(got.Answer, age)[0].Header().Ttl; ttl != 200 {
		t.Errorf("TTL after 100 s in cache = %d, want 200", ttl)
	}
	if m.Answer[0].Header().Ttl != 300 {
		t.Errorf("cached record was modified")
	}

	// Ages count the cache's whole ticks: a response stored late in a
	// tick has aged a second as the next tick begins, and expires at the
	// start of the tick its TTL ends in (up to a second early, never late).
	late := c.at(c.tick(now) + 10).Add(900 * time.Millisecond)
	k2 := cacheKey{name: "late.example.test.", qtype: dns.TypeA}
	c.put(k2, m, 300*time.Second, late)
	next := c.at(c.tick(late) + 1)
	if _, age, _, ok := c.get(k2, next); !ok || age != time.Second {
		t.Errorf("at the next tick: age %v, ok %t; want 1s", age, ok)
	}
	if _, _, _, ok := c.get(k2, next.Add(298*time.Second)); !ok {
		t.Errorf("expired before the tick its TTL ends in")
	}
	if _, _, _, ok := c.get(k2, next.Add(299*time.Second)); ok {
		t.Errorf("served in the tick its TTL ended in")
	}
}

func TestUpstreamFailoverAndRecovery(t *testing.T) {
	primary := netip.MustParseAddrPort("192.0.2.53:53")
	secondary := netip.MustParseAddrPort("198.51.100.53:53")
	z := newTestZone()
	primaryDown := true
	var asked []netip.AddrPort
	ex := func(ctx context.Context, m *dns.Msg, u netip.AddrPort) (*dns.Msg, error) {
		asked = append(asked, u)
		if u == primary && primaryDown {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return z.exchange(ctx, m, u)
	}
	f := newForwarder(ex, 20*time.Millisecond)
	ups := []netip.AddrPort{primary, secondary}
	q := new(dns.Msg)
	q.SetQuestion("v4only.example.test.", dns.TypeA)
	r, err := f.forward(context.Background(), ups, q)
	if err != nil || len(r.Answer) != 1 {
		t.Fatalf("failover: %v %v", r, err)
	}
	if want := []netip.AddrPort{primary, secondary}; !slices.Equal(asked, want) {
		t.Fatalf("asked %v, want %v", asked, want)
	}
	now := time.Now()
	if got := f.order(ups, now); got[0] != secondary {
		t.Errorf("primary in backoff, order %v", got)
	}
	if st := f.stats(ups, now); st[0].Healthy || !st[1].Healthy {
		t.Errorf("health %+v", st)
	}
	// After the backoff the primary is tried first again; once it answers
	// it is healthy.
	later := now.Add(time.Minute)
	if got := f.order(ups, later); got[0] != primary {
		t.Errorf("after backoff, order %v", got)
	}
	primaryDown = false
	f.record(primary, nil, later)
	if st := f.stats(ups, later); !st[0].Healthy {
		t.Errorf("primary not recovered: %+v", st[0])
	}
}

func TestStatsPerHostAndSource(t *testing.T) {
	s := newTestService(t, newTestZone(), nil)
	for range 3 {
		ask(t, s, query{name: "v4only.example.test.", qtype: dns.TypeAAAA, local: listenRDNSS})
	}
	ask(t, s, query{name: "chain.example.test.", qtype: dns.TypeAAAA, local: listenDHCP4})
	ask(t, s, query{name: "dual.example.test.", qtype: dns.TypeAAAA, local: listenDHCP4})
	ask(t, s, query{name: "dual.example.test.", qtype: dns.TypeA, local: listenDHCP4})
	unknown := netip.MustParseAddrPort("[2001:db8:1000::999]:1")
	ask(t, s, query{name: "dual.example.test.", qtype: dns.TypeA, client: unknown})

	st := s.Stats()
	h, ok := st.Hosts["02:00:00:00:00:01"]
	if !ok {
		t.Fatalf("no stats for the host's MAC: %v", st.Hosts)
	}
	want := HostStats{
		Host: "02:00:00:00:00:01", LastAddr: clientOn.Addr(), DNS64: true, Queries: 6, Synthesized: 4,
		ByType:         map[string]uint64{"AAAA": 5, "A": 1},
		BySource:       map[Source]uint64{SourceRDNSS: 3, SourceDHCPv4: 3},
		TopSynthesized: []NameCount{{"v4only.example.test.", 3}, {"chain.example.test.", 1}},
	}
	if diff := cmp.Diff(want, h, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("host stats (-want +got):\n%s", diff)
	}
	if _, ok := st.Hosts[unknown.Addr().String()]; !ok {
		t.Errorf("unknown client not counted by address")
	}
	if st.Queries != 7 || st.Synthesized != 4 || st.BySource[SourceDHCPv4] != 3 || st.ByType["AAAA"] != 5 {
		t.Errorf("global stats: %+v", st)
	}
}

func TestTopNKeepsHeavyHitters(t *testing.T) {
	c := newCounters()
	h := c.host(hostKey{mac: "h"})
	for i := range 1000 {
		c.synthesizedFor(h, "heavy.example.")
		c.synthesizedFor(h, strings.Repeat("x", i%200)+".example.")
	}
	top := c.snapshot().Hosts["h"].TopSynthesized
	if len(top) != topNShown || top[0].Name != "heavy.example." || top[0].Count != 1000 {
		t.Errorf("top list %v", top)
	}
}

// Common query types and sources are counted in fixed slots, rare ones by
// key; the snapshot names them all the same way.
func TestHostCountsByTypeAndSource(t *testing.T) {
	c := newCounters()
	h := c.host(hostKey{mac: "h"})
	addr := netip.MustParseAddr("2001:db8:1::10")
	for _, q := range []struct {
		qtype uint16
		src   Source
	}{
		{dns.TypeA, SourceRDNSS}, {dns.TypeHTTPS, SourceDHCPv6}, {dns.TypeANY, SourceDHCPv4},
		{dns.TypeCAA, SourceOther}, {dns.TypeURI, "lab"}, {100, "lab"}, {dns.TypeA, SourceRDNSS},
	} {
		c.query(h, addr, q.src, q.qtype, false)
	}
	hs := c.snapshot().Hosts["h"]
	wantTypes := map[string]uint64{"A": 2, "HTTPS": 1, "ANY": 1, "CAA": 1, "URI": 1, "UINFO": 1}
	wantSources := map[Source]uint64{SourceRDNSS: 2, SourceDHCPv6: 1, SourceDHCPv4: 1, SourceOther: 1, "lab": 2}
	if diff := cmp.Diff(wantTypes, hs.ByType); diff != "" {
		t.Errorf("by type (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantSources, hs.BySource); diff != "" {
		t.Errorf("by source (-want +got):\n%s", diff)
	}
	if hs.LastAddr != addr || hs.DNS64 || hs.Queries != 7 {
		t.Errorf("host %+v", hs)
	}
}

// The top list is split into stripes by name; together they are the list.
func TestTopNAcrossStripes(t *testing.T) {
	c := newCounters()
	h := c.host(hostKey{mac: "h"})
	// Twelve names, at most two per stripe, so that no stripe evicts.
	var want []NameCount
	var perStripe [topStripes]int
	for i := 0; len(want) < 12; i++ {
		name := fmt.Sprintf("v4-%d.example.", i)
		if st := maphash.String(c.stripeSeed, name) % topStripes; perStripe[st] < 2 {
			perStripe[st]++
			n := len(want) + 1
			for range n {
				c.synthesizedFor(h, name)
			}
			want = append(want, NameCount{Name: name, Count: uint64(n)})
		}
	}
	slices.Reverse(want)
	if got := c.snapshot().Hosts["h"].TopSynthesized; !slices.Equal(got, want[:topNShown]) {
		t.Errorf("top list %v, want %v", got, want[:topNShown])
	}
}

// Both UDP readers count the same host at once; no count is lost.
func TestHostCountsFromConcurrentReaders(t *testing.T) {
	c := newCounters()
	const readers, each = 4, 2000
	var wg sync.WaitGroup
	for r := range readers {
		wg.Go(func() {
			h := c.host(hostKey{mac: "h"})
			addr := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(r)})
			for i := range each {
				qtype := []uint16{dns.TypeA, dns.TypeAAAA}[i%2]
				c.query(h, addr, []Source{SourceRDNSS, SourceDHCPv4}[r%2], qtype, true)
				if qtype == dns.TypeAAAA {
					// Eight names: even all in one stripe, none is evicted.
					c.synthesizedFor(h, fmt.Sprintf("v4-%d.example.", i/2%8))
				}
			}
		})
	}
	wg.Wait()
	hs := c.snapshot().Hosts["h"]
	if hs.Queries != readers*each || hs.Synthesized != readers*each/2 ||
		hs.ByType["A"] != readers*each/2 || hs.ByType["AAAA"] != readers*each/2 ||
		hs.BySource[SourceRDNSS] != readers*each/2 || hs.BySource[SourceDHCPv4] != readers*each/2 || !hs.DNS64 {
		t.Errorf("host counters %+v", hs)
	}
	var top uint64
	for _, nc := range hs.TopSynthesized {
		top += nc.Count
	}
	if len(hs.TopSynthesized) != 8 || top != readers*each/2 {
		t.Errorf("top list %v: want 8 names of %d each", hs.TopSynthesized, readers*each/16)
	}
}

func TestPlanRejectsBadPrefix(t *testing.T) {
	if _, err := compile(Plan{Pref64: netip.MustParsePrefix("2001:db8::/33")}); err == nil {
		t.Error("RFC 6052 2.2: /33 accepted")
	}
	if _, err := compile(Plan{LocalNames: map[string][]netip.Addr{"laptop.example.com.": nil}}); err == nil {
		t.Error("local name outside home.arpa accepted")
	}
}

func TestParseReverse(t *testing.T) {
	for name, want := range map[string]string{
		"1.2.0.192.in-addr.arpa.": "192.0.2.1",
		"b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa.": "4321:0:1:2:3:4:567:89ab",
		"2.0.192.in-addr.arpa.":     "",
		"01.2.0.192.in-addr.arpa.":  "",
		"256.2.0.192.in-addr.arpa.": "",
		"g.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa.": "",
		"4.ip6.arpa.": "",
	} {
		got, ok := parseReverse(name)
		if want == "" {
			if ok {
				t.Errorf("parseReverse(%q) = %s, want failure", name, got)
			}
			continue
		}
		if !ok || got != netip.MustParseAddr(want) {
			t.Errorf("parseReverse(%q) = %s %v, want %s", name, got, ok, want)
		}
	}
}

func TestRFC5452AnswerToAnotherQuestionIsRejected(t *testing.T) {
	z := newTestZone()
	ex := func(ctx context.Context, m *dns.Msg, u netip.AddrPort) (*dns.Msg, error) {
		r, err := z.exchange(ctx, m, u)
		if err == nil && m.Question[0].Name == "v4only.example.test." {
			r.Question[0].Name = "dual.example.test."
		}
		return r, err
	}
	s := newTestService(t, z, func(c *Config) { c.Exchange = ex })
	if m := ask(t, s, query{name: "v4only.example.test.", qtype: dns.TypeA}); m.Rcode != dns.RcodeServerFailure || len(m.Answer) != 0 {
		t.Errorf("answer to another question accepted: %v", m)
	}
	if m := ask(t, s, query{name: "V4ONLY.example.test.", qtype: dns.TypeA, client: clientOff}); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("second try: %v", m)
	}
}
