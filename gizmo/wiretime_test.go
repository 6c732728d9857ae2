package main

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/internal/dnstest"
	"codeberg.org/monostack/gizmo/services/dhcp6pd"
)

// upstreamDNSServer answers A queries for ntp.lab.test on loopback, like
// the ISP's resolver would for an NTP server's name.
func upstreamDNSServer(t *testing.T) netip.AddrPort {
	return dnstest.ServeUDP(t, func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		if len(q.Question) == 1 && q.Question[0].Name == "ntp.lab.test." && q.Question[0].Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: "ntp.lab.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A:   net.IPv4(192, 0, 2, 123),
			})
		}
		w.WriteMsg(m)
	})
}

// The appliance has no resolv.conf of its own: names (the public NTP pool,
// an NTP server's FQDN) are resolved by the upstream resolvers the daemon
// learned from the WAN.
func TestUpstreamResolverAsksTheLearnedResolvers(t *testing.T) {
	ap := upstreamDNSServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := upstreamResolver(func() []netip.AddrPort { return []netip.AddrPort{ap} })
	addrs, err := r.LookupNetIP(ctx, "ip4", "ntp.lab.test")
	if err != nil {
		t.Fatal(err)
	}
	if want := []netip.Addr{netip.MustParseAddr("192.0.2.123")}; !slices.Equal(addrs, want) {
		t.Errorf("ntp.lab.test = %v, want %v", addrs, want)
	}

	none := upstreamResolver(func() []netip.AddrPort { return nil })
	if addrs, err := none.LookupNetIP(ctx, "ip4", "ntp.lab.test"); err == nil {
		t.Errorf("resolved %v without any upstream resolver", addrs)
	}
}

// Go's resolver dials once per attempt: each dial goes to the next
// upstream resolver, so that a retry does not ask a dead one again.
func TestUpstreamResolverTakesTurns(t *testing.T) {
	ups := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:5301"), netip.MustParseAddrPort("[::1]:5302")}
	r := upstreamResolver(func() []netip.AddrPort { return ups })
	for _, want := range []netip.AddrPort{ups[0], ups[1], ups[0]} {
		c, err := r.Dial(context.Background(), "udp", "127.0.0.53:53")
		if err != nil {
			t.Fatal(err)
		}
		got := netip.MustParseAddrPort(c.RemoteAddr().String())
		c.Close()
		if got != want {
			t.Errorf("dialled %v, want %v", got, want)
		}
	}
}

// A DHCPv6-PD lease brings the prefix and the Reply's DNS and NTP servers
// into the state, each a copy of its own.
func TestDelegationObserved(t *testing.T) {
	now := time.Now()
	l := dhcp6pd.Lease{
		Prefix: netip.MustParsePrefix("2001:db8:1000::/56"), PreferredUntil: now.Add(time.Minute), ValidUntil: now.Add(time.Hour),
		DNS:      []netip.Addr{netip.MustParseAddr("2001:db8:0:1::53")},
		NTP:      []netip.Addr{netip.MustParseAddr("2001:db8:0:1::1")},
		NTPNames: []string{"ntp.isp.example"},
	}
	var st state.State
	delegationObserved(&st, l, now)
	if st.Delegated == nil || st.Delegated.Prefix != l.Prefix || !st.Delegated.ValidUntil.Equal(l.ValidUntil) {
		t.Fatalf("delegated %+v", st.Delegated)
	}
	if !slices.Equal(st.WAN.DHCPv6DNS, l.DNS) || !slices.Equal(st.WAN.DHCPv6NTP, l.NTP) || !slices.Equal(st.WAN.DHCPv6NTPNames, l.NTPNames) {
		t.Errorf("WAN %+v", st.WAN)
	}
	l.NTP[0], l.NTPNames[0] = netip.MustParseAddr("2001:db8::99"), "other.example"
	if st.WAN.DHCPv6NTP[0] == l.NTP[0] || st.WAN.DHCPv6NTPNames[0] == l.NTPNames[0] {
		t.Error("the state shares the lease's NTP servers")
	}
}
