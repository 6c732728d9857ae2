package dslite

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"codeberg.org/monostack/gizmo/internal/dnstest"
	"codeberg.org/monostack/gizmo/internal/testrun"
)

func aaaa(name, addr string, ttl uint32) dns.RR {
	return &dns.AAAA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: ttl}, AAAA: net.ParseIP(addr)}
}

func TestAAAAOf(t *testing.T) {
	cname := &dns.CNAME{Hdr: dns.RR_Header{Name: "aftr.example.test.", Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 60}, Target: "b.example.test."}
	for _, c := range []struct {
		name    string
		rcode   int
		answer  []dns.RR
		want    netip.Addr
		wantTTL time.Duration
	}{
		{"RFC 6334 §4: the AAAA record's address", dns.RcodeSuccess, []dns.RR{aaaa("aftr.example.test.", "2001:db8:0:5::1", 300)},
			netip.MustParseAddr("2001:db8:0:5::1"), 300 * time.Second},
		{"RFC 1034 §3.6.2: through a CNAME, the smallest TTL of the chain", dns.RcodeSuccess,
			[]dns.RR{cname, aaaa("b.example.test.", "2001:db8:0:5::2", 3600)}, netip.MustParseAddr("2001:db8:0:5::2"), 60 * time.Second},
		{"a link-local or unique local AFTR is skipped for a global one", dns.RcodeSuccess,
			[]dns.RR{aaaa("a.", "fe80::1", 10), aaaa("a.", "fd00::1", 10), aaaa("a.", "2001:db8::a", 10)}, netip.MustParseAddr("2001:db8::a"), 10 * time.Second},
		{"an IPv4-mapped address is no AFTR", dns.RcodeSuccess, []dns.RR{aaaa("a.", "::ffff:192.0.2.1", 10)}, netip.Addr{}, 0},
		{"NXDOMAIN", dns.RcodeNameError, nil, netip.Addr{}, 0},
		{"no answer", dns.RcodeSuccess, nil, netip.Addr{}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := &dns.Msg{Answer: c.answer}
			m.Rcode = c.rcode
			a, ttl, err := aaaaOf(m)
			if a != c.want || ttl != c.wantTTL || (err == nil) != c.want.IsValid() {
				t.Errorf("aaaaOf = %v, %v, %v; want %v, %v", a, ttl, err, c.want, c.wantTTL)
			}
		})
	}
}

func TestRecheckAndRetry(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want time.Duration
	}{
		{"RFC 1035 §3.2.1: the TTL decides when to ask again", recheckAfter(10 * time.Minute), 10 * time.Minute},
		{"a zero TTL is not a stream of queries", recheckAfter(0), MinRecheck},
		{"a week's TTL still rechecks within the hour", recheckAfter(7 * 24 * time.Hour), MaxRecheck},
		{"the first retry", retryAfter(1), RetryMin},
		{"retries back off", retryAfter(3), 4 * RetryMin},
		{"to a bound", retryAfter(100), RetryMax},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestLookupAAAA asks a DNS server on loopback, after one that does not
// answer.
func TestLookupAAAA(t *testing.T) {
	good := dnstest.ServeUDP(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if r.Question[0].Name == "aftr.example.test." && r.Question[0].Qtype == dns.TypeAAAA {
			m.Answer = []dns.RR{aaaa("aftr.example.test.", "2001:db8:0:5::1", 120)}
		} else {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})
	// A closed port answers at once with ICMP port unreachable.
	dead, _ := net.ListenPacket("udp", "127.0.0.1:0")
	deadAddr := netip.MustParseAddrPort(dead.LocalAddr().String())
	dead.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, ttl, err := lookupAAAA(ctx, "aftr.example.test", []netip.AddrPort{deadAddr, good})
	if err != nil || a != netip.MustParseAddr("2001:db8:0:5::1") || ttl != 120*time.Second {
		t.Errorf("lookupAAAA = %v, %v, %v", a, ttl, err)
	}
	if _, _, err := lookupAAAA(ctx, "nothing.example.test", []netip.AddrPort{good}); err == nil {
		t.Error("NXDOMAIN resolved")
	}
	if _, _, err := lookupAAAA(ctx, "aftr.example.test", nil); err == nil {
		t.Error("resolved without a resolver")
	}
}

// TestServiceResolves drives the service's lookups with a fake DNS: a new
// name is looked up at once and reported, a failure keeps the address,
// and a name gone is reported gone.
func TestServiceResolves(t *testing.T) {
	var (
		mu      sync.Mutex
		answer  = netip.MustParseAddr("2001:db8:0:5::1")
		fail    bool
		queries []string
	)
	reports := make(chan netip.Addr, 10)
	svc, err := New(Config{
		OnAFTR: func(_ string, a netip.Addr) { reports <- a },
		lookup: func(_ context.Context, name string, _ []netip.AddrPort) (netip.Addr, time.Duration, error) {
			mu.Lock()
			defer mu.Unlock()
			queries = append(queries, name)
			if fail {
				return netip.Addr{}, 0, errors.New("SERVFAIL")
			}
			return answer, 0, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	testrun.Start(t, "Run", svc.Run)
	resolvers := []netip.AddrPort{netip.MustParseAddrPort("[2001:db8:0:1::53]:53")}

	wait := func(want netip.Addr) {
		t.Helper()
		select {
		case a := <-reports:
			if a != want {
				t.Fatalf("reported %v, want %v", a, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no report of %v", want)
		}
	}
	svc.Update(Plan{AFTRName: "aftr.example.test", Resolvers: resolvers})
	wait(answer)

	mu.Lock()
	fail = true
	mu.Unlock()
	svc.Update(Plan{AFTRName: "aftr.example.test", Resolvers: resolvers})
	select {
	case a := <-reports:
		t.Fatalf("reported %v after a plan that changed nothing", a)
	case <-time.After(200 * time.Millisecond):
	}

	svc.Update(Plan{Resolvers: resolvers})
	wait(netip.Addr{})
	if s := svc.Stats(); s.Lookups != 1 || s.LookupFailures != 0 {
		t.Errorf("lookups %d, failures %d", s.Lookups, s.LookupFailures)
	}
}
