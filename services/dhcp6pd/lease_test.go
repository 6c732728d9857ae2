package dhcp6pd

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
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
			name:   "RFC 7084 WPD-2: a prefix longer than /64 is useless for a LAN",
			msg:    replyWith(iapdOpt(h, 2*h, prefixOpt("2001:db8:1000::/80", 3*h, 4*h))),
			reason: ReasonPrefixTooLong,
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
			name:   "link-local prefix",
			msg:    replyWith(iapdOpt(h, 2*h, prefixOpt("fe80::/56", 3*h, 4*h))),
			reason: ReasonNotGlobal,
		},
		{
			name:   "RFC 4193: a unique local prefix is no delegation",
			msg:    replyWith(iapdOpt(h, 2*h, prefixOpt("fd12:3456:789a::/48", 3*h, 4*h))),
			reason: ReasonULA,
		},
		{
			name:   "RFC 4291 2.7: a multicast prefix is no delegation",
			msg:    replyWith(iapdOpt(h, 2*h, prefixOpt("ff05:1000::/56", 3*h, 4*h))),
			reason: ReasonNotGlobal,
		},
		{
			name:   "RFC 8415 21.22: prefix length 0 (::/0) carries no prefix",
			msg:    replyWith(iapdOpt(h, 2*h, prefixOpt("::/0", 3*h, 4*h))),
			reason: ReasonMissingPrefix,
		},
		{
			name:   "RFC 4291 2.5.2: the unspecified address as a prefix is no delegation",
			msg:    replyWith(iapdOpt(h, 2*h, prefixOpt("::/48", 3*h, 4*h))),
			reason: ReasonNotGlobal,
		},
		{
			name:   "RFC 6177: a prefix shorter than /32 claims more than an ISP's allocation",
			msg:    replyWith(iapdOpt(h, 2*h, prefixOpt("2000::/3", 3*h, 4*h))),
			reason: ReasonPrefixTooShort,
		},
		{
			name:   "RFC 6177: a /31 is one bit too short",
			msg:    replyWith(iapdOpt(h, 2*h, prefixOpt("2001:db8::/31", 3*h, 4*h))),
			reason: ReasonPrefixTooShort,
		},
		{
			name: "RFC 7084 WPD-3: a /32 is the shortest delegation accepted",
			msg:  replyWith(iapdOpt(h, 2*h, prefixOpt("2001:db8::/32", 3*h, 4*h))),
			want: Lease{
				Prefix: netip.MustParsePrefix("2001:db8::/32"), PreferredUntil: testT0.Add(3 * h),
				ValidUntil: testT0.Add(4 * h), T1: testT0.Add(h), T2: testT0.Add(2 * h),
			},
		},
		{
			name: "RFC 7084 WPD-2: a /64 is the longest delegation accepted",
			msg:  replyWith(iapdOpt(h, 2*h, prefixOpt("2001:db8:1000:1::/64", 3*h, 4*h))),
			want: Lease{
				Prefix: netip.MustParsePrefix("2001:db8:1000:1::/64"), PreferredUntil: testT0.Add(3 * h),
				ValidUntil: testT0.Add(4 * h), T1: testT0.Add(h), T2: testT0.Add(2 * h),
			},
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
			// Round-trip through bytes: the client sees what the wire carries.
			msg, err := dhcpv6.MessageFromBytes(tt.msg.ToBytes())
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := parseLease(msg, testIAID, netip.Prefix{}, testT0)
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
