package clat

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestPref64FromAAAA(t *testing.T) {
	a := netip.MustParseAddr
	p := netip.MustParsePrefix
	for _, tc := range []struct {
		name  string
		addrs []netip.Addr
		want  []netip.Prefix
	}{
		{"RFC 7050 §3: the well-known prefix /96", []netip.Addr{a("64:ff9b::c000:aa"), a("64:ff9b::c000:ab")}, []netip.Prefix{p("64:ff9b::/96")}},
		{"RFC 6052 §2.2: a network-specific /96", []netip.Addr{a("2001:db8:46::192.0.0.171")}, []netip.Prefix{p("2001:db8:46::/96")}},
		{"RFC 6052 §2.2: /64 skips the u octet", []netip.Addr{a("2001:db8:1:2:c0:0:aa00:0")}, []netip.Prefix{p("2001:db8:1:2::/64")}},
		{"RFC 6052 §2.2: /56", []netip.Addr{a("2001:db8:1:2c0:0:aa::")}, []netip.Prefix{p("2001:db8:1:200::/56")}},
		{"RFC 6052 §2.2: /48", []netip.Addr{a("2001:db8:1:c000:0:aa00::")}, []netip.Prefix{p("2001:db8:1::/48")}},
		{"RFC 6052 §2.2: /40", []netip.Addr{a("2001:db8:c0:0:aa::")}, []netip.Prefix{p("2001:db8::/40")}},
		{"RFC 6052 §2.2: /32", []netip.Addr{a("2001:db8:c000:ab::")}, []netip.Prefix{p("2001:db8::/32")}},
		{"RFC 7050 §3: an address without a well-known IPv4 address is not synthesized", []netip.Addr{a("2001:db8::1")}, nil},
		{"RFC 6052 §2.2: a non-zero u octet is no embedding", []netip.Addr{a("2001:db8:1:2:ffc0:0:aa00:0")}, nil},
		{"both answers give one prefix", []netip.Addr{a("2001:db8:46::c000:aa"), a("2001:db8:46::c000:ab")}, []netip.Prefix{p("2001:db8:46::/96")}},
		{"two NAT64s: the answers' order is kept", []netip.Addr{a("2001:db8:47::c000:aa"), a("2001:db8:46::c000:aa")}, []netip.Prefix{p("2001:db8:47::/96"), p("2001:db8:46::/96")}},
		{"IPv4 and mapped addresses are no answer", []netip.Addr{a("192.0.0.170"), a("::ffff:192.0.0.170")}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Pref64FromAAAA(tc.addrs); !slices.Equal(got, tc.want) {
				t.Errorf("Pref64FromAAAA = %v, want %v", got, tc.want)
			}
		})
	}
}

func aaaa(name string, ttl uint32, a string) dns.RR {
	return &dns.AAAA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: ttl}, AAAA: net.ParseIP(a)}
}

func TestResultOf(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	msg := func(rcode int, rrs ...dns.RR) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(WellKnownName, dns.TypeAAAA)
		m.Rcode, m.Answer = rcode, rrs
		return m
	}
	for _, tc := range []struct {
		name    string
		resp    *dns.Msg
		prefix  string
		valid   time.Duration
		none    bool
		wantErr bool
	}{
		{"RFC 7050 §3: the prefix, valid for the answer's TTL", msg(dns.RcodeSuccess, aaaa(WellKnownName, 3600, "2001:db8:46::c000:aa")), "2001:db8:46::/96", time.Hour, false, false},
		{"RFC 7050 §3: the shortest TTL of the synthesized answers", msg(dns.RcodeSuccess, aaaa(WellKnownName, 3600, "2001:db8:46::c000:aa"), aaaa(WellKnownName, 600, "2001:db8:46::c000:ab")), "2001:db8:46::/96", 10 * time.Minute, false, false},
		{"a short TTL is kept until the next query had time to answer", msg(dns.RcodeSuccess, aaaa(WellKnownName, 5, "2001:db8:46::c000:aa")), "2001:db8:46::/96", MinRecheck + RefreshBefore + QueryTimeout, false, false},
		{"RFC 7050 §3: no AAAA (NODATA) means no DNS64", msg(dns.RcodeSuccess), "", 0, true, false},
		{"RFC 7050 §3: NXDOMAIN means no DNS64", msg(dns.RcodeNameError), "", 0, true, false},
		{"an AAAA that is not synthesized means no DNS64", msg(dns.RcodeSuccess, aaaa(WellKnownName, 60, "2001:db8::1")), "", 0, true, false},
		{"an answer for another name is ignored", msg(dns.RcodeSuccess, aaaa("example.test.", 60, "2001:db8:46::c000:aa")), "", 0, true, false},
		{"an answer behind a CNAME counts",
			msg(dns.RcodeSuccess, &dns.CNAME{Hdr: dns.RR_Header{Name: WellKnownName, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 60}, Target: "x.example."},
				aaaa("x.example.", 60, "2001:db8:46::c000:aa")), "2001:db8:46::/96", time.Minute, false, false},
		{"SERVFAIL says nothing", msg(dns.RcodeServerFailure), "", 0, false, true},
		{"REFUSED says nothing", msg(dns.RcodeRefused), "", 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := resultOf(tc.resp, now)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			got := ""
			if r.Prefix.IsValid() {
				got = r.Prefix.String()
			}
			if r.None != tc.none || got != tc.prefix {
				t.Errorf("got prefix %v none %v, want %q none %v", r.Prefix, r.None, tc.prefix, tc.none)
			}
			if tc.prefix != "" && r.ValidUntil.Sub(now) != tc.valid {
				t.Errorf("valid for %v, want %v", r.ValidUntil.Sub(now), tc.valid)
			}
		})
	}
}

// fakeResolvers answer discovery's queries by server address.
type fakeResolvers struct {
	mu      sync.Mutex
	answers map[netip.AddrPort]func() (*dns.Msg, error)
	asked   []netip.AddrPort
}

func (f *fakeResolvers) exchange(_ context.Context, _ *dns.Msg, srv netip.AddrPort) (*dns.Msg, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, srv)
	a, ok := f.answers[srv]
	if !ok {
		return nil, errors.New("timeout")
	}
	return a()
}

func TestDiscoverAsksInOrder(t *testing.T) {
	bad := netip.MustParseAddrPort("[2001:db8:0:1::54]:53")
	good := netip.MustParseAddrPort("[2001:db8:0:1::53]:53")
	f := &fakeResolvers{answers: map[netip.AddrPort]func() (*dns.Msg, error){
		good: func() (*dns.Msg, error) {
			m := new(dns.Msg)
			m.Answer = []dns.RR{aaaa(WellKnownName, 60, "2001:db8:46::c000:aa")}
			return m, nil
		},
	}}
	d := NewDiscovery(DiscoveryConfig{Exchange: f.exchange})
	r := d.Discover(context.Background(), []netip.AddrPort{bad, good})
	if r.Err != nil || r.Prefix != netip.MustParsePrefix("2001:db8:46::/96") || r.Resolver != good {
		t.Errorf("got %+v, want the prefix from %v", r, good)
	}
	if !slices.Equal(f.asked, []netip.AddrPort{bad, good}) {
		t.Errorf("asked %v, want the first resolver, then the second", f.asked)
	}
	r = d.Discover(context.Background(), []netip.AddrPort{bad})
	if r.Err == nil || r.None || r.Prefix.IsValid() {
		t.Errorf("no resolver answered: got %+v, want an error", r)
	}
}

func TestNextCheck(t *testing.T) {
	d := NewDiscovery(DiscoveryConfig{})
	now := time.Now()
	backoff := 2 * time.Second
	// RFC 7050 §3: ten seconds before the TTL runs out.
	if got := d.nextCheck(Discovered{Prefix: testPref64, At: now, ValidUntil: now.Add(time.Hour)}, &backoff); got != time.Hour-RefreshBefore {
		t.Errorf("found, TTL 1 h: next check in %v, want %v", got, time.Hour-RefreshBefore)
	}
	if got := d.nextCheck(Discovered{None: true, At: now}, &backoff); got != NoneRecheck {
		t.Errorf("none: next check in %v, want %v", got, NoneRecheck)
	}
	// Failures back off, up to a minute (plus a quarter of jitter).
	var last time.Duration
	for range 10 {
		last = d.nextCheck(Discovered{Err: errors.New("timeout"), At: now}, &backoff)
	}
	if last < retryMax || last > retryMax+retryMax/4+1 {
		t.Errorf("after ten failures: next check in %v, want about %v", last, retryMax)
	}
}

// A changed upstream is asked at once, an unchanged one not again until
// its time; every round reaches OnResult.
func TestDiscoveryRunFollowsThePlan(t *testing.T) {
	srv := netip.MustParseAddrPort("[2001:db8:0:1::53]:53")
	srv2 := netip.MustParseAddrPort("[2001:db8:0:1::54]:53")
	answer := func() (*dns.Msg, error) {
		m := new(dns.Msg)
		m.Answer = []dns.RR{aaaa(WellKnownName, 3600, "2001:db8:46::c000:aa")}
		return m, nil
	}
	f := &fakeResolvers{answers: map[netip.AddrPort]func() (*dns.Msg, error){srv: answer, srv2: answer}}
	results := make(chan Discovered, 10)
	d := NewDiscovery(DiscoveryConfig{Exchange: f.exchange, OnResult: func(r Discovered) { results <- r }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	d.Update(DiscoveryPlan{Resolvers: []netip.AddrPort{srv}})
	if r := <-results; r.Resolver != srv || !r.Prefix.IsValid() {
		t.Fatalf("first round %+v", r)
	}
	d.Update(DiscoveryPlan{Resolvers: []netip.AddrPort{srv}})
	d.Update(DiscoveryPlan{Resolvers: []netip.AddrPort{srv2}})
	select {
	case r := <-results:
		if r.Resolver != srv2 {
			t.Errorf("after the upstream changed: asked %v, want %v", r.Resolver, srv2)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a changed upstream was not asked")
	}
	select {
	case r := <-results:
		t.Errorf("asked again before the TTL: %+v", r)
	case <-time.After(200 * time.Millisecond):
	}
}

// The resolvers' answers are outside input: whatever they hold, a result
// is consistent (a prefix of an RFC 6052 length, or none, or an error).
func FuzzResultOf(f *testing.F) {
	m := new(dns.Msg)
	m.SetQuestion(WellKnownName, dns.TypeAAAA)
	m.Answer = []dns.RR{aaaa(WellKnownName, 60, "2001:db8:46::c000:aa")}
	b, _ := m.Pack()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		resp := new(dns.Msg)
		if resp.Unpack(b) != nil {
			return
		}
		r, err := resultOf(resp, time.Unix(0, 0))
		if err != nil {
			return
		}
		if r.None == r.Prefix.IsValid() {
			t.Fatalf("none %v with prefix %v", r.None, r.Prefix)
		}
		if r.Prefix.IsValid() && !slices.Contains(pref64Lengths, r.Prefix.Bits()) {
			t.Fatalf("prefix %v has no RFC 6052 length", r.Prefix)
		}
	})
}

func FuzzPref64FromAAAA(f *testing.F) {
	f.Add([]byte(netip.MustParseAddr("64:ff9b::c000:aa").AsSlice()))
	f.Fuzz(func(t *testing.T, b []byte) {
		var addrs []netip.Addr
		for len(b) >= 16 {
			addrs = append(addrs, netip.AddrFrom16([16]byte(b[:16])))
			b = b[16:]
		}
		for _, p := range Pref64FromAAAA(addrs) {
			if p != p.Masked() || !slices.Contains(pref64Lengths, p.Bits()) || p.Addr().As16()[8] != 0 {
				t.Fatalf("bad prefix %v", p)
			}
		}
	})
}
