package dhcp6pd

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/insomniacslk/dhcp/rfc1035label"
)

var (
	testIAID     = [4]byte{0, 0, 0, 1}
	testServerID = &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{2, 0, 0, 0, 0, 0x53}}
	testT0       = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

func pfx(s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return n
}

func prefixOpt(p string, preferred, valid time.Duration) *dhcpv6.OptIAPrefix {
	return &dhcpv6.OptIAPrefix{Prefix: pfx(p), PreferredLifetime: preferred, ValidLifetime: valid}
}

func iapdOpt(t1, t2 time.Duration, opts ...dhcpv6.Option) *dhcpv6.OptIAPD {
	ia := &dhcpv6.OptIAPD{IaId: testIAID, T1: t1, T2: t2}
	for _, o := range opts {
		ia.Options.Add(o)
	}
	return ia
}

func replyWith(opts ...dhcpv6.Option) *dhcpv6.Message {
	m := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeReply}
	m.AddOption(dhcpv6.OptServerID(testServerID))
	for _, o := range opts {
		m.AddOption(o)
	}
	return m
}

// parseWire parses the lease in m at testT0 as the client sees it: through
// the wire format, with no current prefix.
func parseWire(t *testing.T, m *dhcpv6.Message) (Lease, error) {
	t.Helper()
	msg, err := dhcpv6.MessageFromBytes(m.ToBytes())
	if err != nil {
		t.Fatal(err)
	}
	l, _, err := parseLease(msg, testIAID, netip.Prefix{}, testT0)
	return l, err
}

func TestParseLease(t *testing.T) {
	h := time.Hour
	tests := []struct {
		name   string
		msg    *dhcpv6.Message
		reason string // "" for a valid lease
		status iana.StatusCode
		want   Lease
	}{
		{
			name: "RFC 8415 18.2.10.1: valid /56 with T1, T2, DNS",
			msg: replyWith(iapdOpt(h, 2*h, prefixOpt("2001:db8:1000:100::/56", 3*h, 4*h)),
				dhcpv6.OptDNS(net.ParseIP("2001:db8::53"))),
			want: Lease{
				Prefix: netip.MustParsePrefix("2001:db8:1000:100::/56"), PreferredUntil: testT0.Add(3 * h),
				ValidUntil: testT0.Add(4 * h), T1: testT0.Add(h), T2: testT0.Add(2 * h),
				DNS: []netip.Addr{netip.MustParseAddr("2001:db8::53")},
			},
		},
		{
			name: "RFC 8415 21.21: T1 and T2 0 leave the times to the client: 0.5 and 0.8 of preferred",
			msg:  replyWith(iapdOpt(0, 0, prefixOpt("2001:db8:1000::/56", 1000*time.Second, 2000*time.Second))),
			want: Lease{
				Prefix: netip.MustParsePrefix("2001:db8:1000::/56"), PreferredUntil: testT0.Add(1000 * time.Second),
				ValidUntil: testT0.Add(2000 * time.Second), T1: testT0.Add(500 * time.Second), T2: testT0.Add(800 * time.Second),
			},
		},
		{
			name: "RFC 8415 7.7: infinite lifetimes never expire",
			msg:  replyWith(iapdOpt(0, 0, prefixOpt("2001:db8:1000::/48", infinity, infinity))),
			want: Lease{
				Prefix: netip.MustParsePrefix("2001:db8:1000::/48"), PreferredUntil: farFuture,
				ValidUntil: farFuture, T1: farFuture, T2: farFuture,
			},
		},
		{
			name: "T2 beyond the valid lifetime is cut to it",
			msg:  replyWith(iapdOpt(h, 10*h, prefixOpt("2001:db8:1000::/56", h, 2*h))),
			want: Lease{
				Prefix: netip.MustParsePrefix("2001:db8:1000::/56"), PreferredUntil: testT0.Add(h),
				ValidUntil: testT0.Add(2 * h), T1: testT0.Add(h), T2: testT0.Add(2 * h),
			},
		},
		{
			name: "RFC 8415 21.21: client-chosen T2 for the longest finite lifetime does not overflow",
			msg:  replyWith(iapdOpt(0, 0, prefixOpt("2001:db8:1000::/56", infinity-time.Second, infinity-time.Second))),
			want: Lease{
				Prefix: netip.MustParsePrefix("2001:db8:1000::/56"), PreferredUntil: testT0.Add(infinity - time.Second),
				ValidUntil: testT0.Add(infinity - time.Second), T1: testT0.Add((infinity - time.Second) / 2), T2: testT0.Add((infinity - time.Second) / 10 * 8),
			},
		},
		{
			name:   "RFC 8415 21.21: T1 > T2 discards the IA_PD",
			msg:    replyWith(iapdOpt(2*h, h, prefixOpt("2001:db8:1000::/56", 3*h, 4*h))),
			reason: ReasonT1OverT2,
		},
		{
			name:   "RFC 8415 21.22: preferred > valid discards the prefix",
			msg:    replyWith(iapdOpt(h, 2*h, prefixOpt("2001:db8:1000::/56", 5*h, 4*h))),
			reason: ReasonPreferredOverValid,
		},
		{
			name:   "RFC 8415 18.2.10.1: valid lifetime 0 is a withdrawal, not a lease",
			msg:    replyWith(iapdOpt(h, 2*h, prefixOpt("2001:db8:1000::/56", 0, 0))),
			reason: ReasonZeroValid,
		},
		{
			name:   "missing IA_PD",
			msg:    replyWith(dhcpv6.OptDNS(net.ParseIP("2001:db8::53"))),
			reason: ReasonMissingIAPD,
		},
		{
			name:   "IA_PD without prefixes",
			msg:    replyWith(iapdOpt(h, 2*h)),
			reason: ReasonMissingPrefix,
		},
		{
			name: "a refused prefix beside a good one: the good one is the lease",
			msg: replyWith(iapdOpt(h, 2*h, prefixOpt("fd00:1::/48", 3*h, 4*h),
				prefixOpt("2001:db8:1000:100::/56", 3*h, 4*h))),
			want: Lease{
				Prefix: netip.MustParsePrefix("2001:db8:1000:100::/56"), PreferredUntil: testT0.Add(3 * h),
				ValidUntil: testT0.Add(4 * h), T1: testT0.Add(h), T2: testT0.Add(2 * h),
			},
		},
		{
			name:   "RFC 8415 16: a Reply needs a Server Identifier",
			msg:    &dhcpv6.Message{MessageType: dhcpv6.MessageTypeReply, Options: dhcpv6.MessageOptions{Options: dhcpv6.Options{iapdOpt(h, 2*h, prefixOpt("2001:db8:1000::/56", 3*h, 4*h))}}},
			reason: ReasonMissingServerID,
		},
		{
			name:   "RFC 8415 21.13: NoPrefixAvail in the IA_PD",
			msg:    replyWith(iapdOpt(0, 0, &dhcpv6.OptStatusCode{StatusCode: iana.StatusNoPrefixAvail})),
			status: iana.StatusNoPrefixAvail,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseWire(t, tt.msg)
			var se *StatusError
			switch {
			case tt.status != 0:
				if !errors.As(err, &se) || se.Code != tt.status {
					t.Fatalf("err = %v, want status %v", err, tt.status)
				}
			case tt.reason != "":
				if err == nil || reasonOf(err) != tt.reason {
					t.Fatalf("err = %v, want reason %q", err, tt.reason)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				tt.want.ServerID = testServerID.ToBytes()
				tt.want.Acquired = testT0
				if got.Prefix != tt.want.Prefix || !got.PreferredUntil.Equal(tt.want.PreferredUntil) ||
					!got.ValidUntil.Equal(tt.want.ValidUntil) || !got.T1.Equal(tt.want.T1) || !got.T2.Equal(tt.want.T2) ||
					len(got.DNS) != len(tt.want.DNS) || string(got.ServerID) != string(tt.want.ServerID) {
					t.Errorf("lease\n got %+v\nwant %+v", got, tt.want)
				}
				for i := range got.DNS {
					if got.DNS[i] != tt.want.DNS[i] {
						t.Errorf("DNS[%d] = %v, want %v", i, got.DNS[i], tt.want.DNS[i])
					}
				}
			}
		})
	}
}

// The delegated prefix itself: what a LAN can use of an ISP's delegation
// and what is no delegation at all. Every case is a Reply with T1 1 h,
// T2 2 h and one prefix preferred for 3 h and valid for 4 h.
func TestParseLeasePrefixRules(t *testing.T) {
	h := time.Hour
	for _, c := range []struct {
		name   string
		prefix string
		reason string // "" for a lease
	}{
		{"RFC 7084 WPD-2: a prefix longer than /64 is useless for a LAN", "2001:db8:1000::/80", ReasonPrefixTooLong},
		{"RFC 4291 2.5.6: a link-local prefix is no delegation", "fe80::/56", ReasonNotGlobal},
		{"RFC 4193: a unique local prefix is no delegation", "fd12:3456:789a::/48", ReasonULA},
		{"RFC 4291 2.7: a multicast prefix is no delegation", "ff05:1000::/56", ReasonNotGlobal},
		{"RFC 8415 21.22: prefix length 0 (::/0) carries no prefix", "::/0", ReasonMissingPrefix},
		{"RFC 4291 2.5.2: the unspecified address as a prefix is no delegation", "::/48", ReasonNotGlobal},
		{"RFC 6177: a prefix shorter than /32 claims more than an ISP's allocation", "2000::/3", ReasonPrefixTooShort},
		{"RFC 6177: a /31 is one bit too short", "2001:db8::/31", ReasonPrefixTooShort},
		{"RFC 7084 WPD-3: a /32 is the shortest delegation accepted", "2001:db8::/32", ""},
		{"RFC 7084 WPD-2: a /64 is the longest delegation accepted", "2001:db8:1000:1::/64", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseWire(t, replyWith(iapdOpt(h, 2*h, prefixOpt(c.prefix, 3*h, 4*h))))
			if c.reason != "" {
				if err == nil || reasonOf(err) != c.reason {
					t.Fatalf("err = %v, want reason %q", err, c.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Prefix != netip.MustParsePrefix(c.prefix) || !got.PreferredUntil.Equal(testT0.Add(3*h)) ||
				!got.ValidUntil.Equal(testT0.Add(4*h)) || !got.T1.Equal(testT0.Add(h)) || !got.T2.Equal(testT0.Add(2*h)) {
				t.Errorf("lease %+v, want %s with the Reply's times", got, c.prefix)
			}
		})
	}
}

func TestParseLeasePrefersCurrentPrefixAndReportsWithdrawn(t *testing.T) {
	h := time.Hour
	msg := replyWith(iapdOpt(h, 2*h,
		prefixOpt("2001:db8:1000::/56", 0, 0),
		prefixOpt("2001:db8:2000::/56", 3*h, 4*h),
		prefixOpt("2001:db8:3000::/56", 3*h, 4*h)))
	l, withdrawn, err := parseLease(msg, testIAID, netip.MustParsePrefix("2001:db8:3000::/56"), testT0)
	if err != nil {
		t.Fatal(err)
	}
	if want := netip.MustParsePrefix("2001:db8:3000::/56"); l.Prefix != want {
		t.Errorf("prefix %v, want the current one %v", l.Prefix, want)
	}
	if len(withdrawn) != 1 || withdrawn[0] != netip.MustParsePrefix("2001:db8:1000::/56") {
		t.Errorf("withdrawn = %v", withdrawn)
	}
}

func ntpOpt(subs ...dhcpv6.Option) *dhcpv6.OptNTPServer {
	return &dhcpv6.OptNTPServer{Suboptions: subs}
}

func ntpAddr(s string) *dhcpv6.NTPSuboptionSrvAddr {
	a := dhcpv6.NTPSuboptionSrvAddr(net.ParseIP(s))
	return &a
}

func TestTimeServers(t *testing.T) {
	mcast := dhcpv6.NTPSuboptionMCAddr(net.ParseIP("ff05::101"))
	tests := []struct {
		name  string
		opts  []dhcpv6.Option
		addrs []string
		names []string
	}{
		{"none", nil, nil, nil},
		{"RFC 5908 §4.1: server address suboptions, in order",
			[]dhcpv6.Option{ntpOpt(ntpAddr("2001:db8:0:1::1"), ntpAddr("2001:db8:0:1::2"))},
			[]string{"2001:db8:0:1::1", "2001:db8:0:1::2"}, nil},
		{"RFC 5908 §4.3: FQDN suboption",
			[]dhcpv6.Option{ntpOpt(&dhcpv6.NTPSuboptionSrvFQDN{Labels: rfc1035label.Labels{Labels: []string{"ntp.example.test"}}})},
			nil, []string{"ntp.example.test"}},
		{"RFC 5908 §4.2: a multicast suboption is not a server to ask",
			[]dhcpv6.Option{ntpOpt(&mcast, ntpAddr("2001:db8:0:1::1"))}, []string{"2001:db8:0:1::1"}, nil},
		{"RFC 5908 §4: several options add up",
			[]dhcpv6.Option{ntpOpt(ntpAddr("2001:db8:0:1::1")), ntpOpt(ntpAddr("2001:db8:0:1::2"))},
			[]string{"2001:db8:0:1::1", "2001:db8:0:1::2"}, nil},
		{"RFC 4075: SNTP servers after the NTP ones, without duplicates",
			[]dhcpv6.Option{ntpOpt(ntpAddr("2001:db8:0:1::1")), dhcpv6.OptSNTP(net.ParseIP("2001:db8:0:1::1"), net.ParseIP("2001:db8:0:1::123"))},
			[]string{"2001:db8:0:1::1", "2001:db8:0:1::123"}, nil},
		{"unspecified, loopback and multicast addresses are dropped",
			[]dhcpv6.Option{ntpOpt(ntpAddr("::"), ntpAddr("::1"), ntpAddr("ff02::1")), dhcpv6.OptSNTP(net.ParseIP("::"))}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := parseWire(t, replyWith(append([]dhcpv6.Option{testIAPD()}, tt.opts...)...))
			if err != nil {
				t.Fatal(err)
			}
			var addrs []string
			for _, a := range l.NTP {
				addrs = append(addrs, a.String())
			}
			if !slices.Equal(addrs, tt.addrs) || !slices.Equal(l.NTPNames, tt.names) {
				t.Errorf("NTP %v names %v, want %v %v", addrs, l.NTPNames, tt.addrs, tt.names)
			}
		})
	}
}

// RFC 5908 §4: the client asks for OPTION_NTP_SERVER in every message.
func TestORORequestsTimeServers(t *testing.T) {
	h := newHarness(t)
	sol := h.firstSolicit()
	for _, o := range []dhcpv6.OptionCode{dhcpv6.OptionNTPServer, dhcpv6.OptionSNTPServerList, dhcpv6.OptionDNSRecursiveNameServer} {
		if !sol.IsOptionRequested(o) {
			t.Errorf("Solicit does not request %v", o)
		}
	}
}

// A malformed time-server option does not cost the delegation: the option
// is ignored and counted, the lease accepted.
func TestMalformedTimeOptionIsIgnored(t *testing.T) {
	for name, bad := range map[string]dhcpv6.Option{
		"RFC 5908 §4.1: an address suboption shorter than 16 octets": &dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionNTPServer, OptionData: []byte{0, 1, 0, 4, 1, 2, 3, 4}},
		"RFC 4075: an SNTP list that is not a multiple of 16 octets": &dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionSNTPServerList, OptionData: []byte{1, 2, 3}},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			h.answer(h.firstSolicit(), dhcpv6.MessageTypeAdvertise, testIAPD(), bad)
			h.advance()
			h.answer(h.last(dhcpv6.MessageTypeRequest), dhcpv6.MessageTypeReply, testIAPD(), bad, ntpOpt(ntpAddr("2001:db8:0:1::1")))
			if len(h.leases) != 1 || h.m.phase != phaseBound {
				t.Fatalf("leases %v phase %v; want the delegation despite the bad option", h.leases, h.m.phase)
			}
			if got := h.leases[0].NTP; len(got) != 1 || got[0] != netip.MustParseAddr("2001:db8:0:1::1") {
				t.Errorf("NTP %v, want the well-formed option's server", got)
			}
			if s := h.m.stats.Snapshot(); s.MalformedTimeOptions != 2 || s.Malformed != 0 {
				t.Errorf("malformed time options %d, malformed %d; want 2 and 0", s.MalformedTimeOptions, s.Malformed)
			}
		})
	}
	// Damage anywhere else still drops the message.
	raw := replyWith(iapdOpt(time.Hour, 2*time.Hour)).ToBytes()
	if _, n := dropBadTimeOptions(raw[:len(raw)-1]); n != 0 {
		t.Error("a truncated message was repaired")
	}
}
