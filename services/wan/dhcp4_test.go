package wan

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

func ack(t testing.TB, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	base := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(dhcpv4.MessageTypeAck),
		dhcpv4.WithYourIP(net.IPv4(192, 0, 2, 100)),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(192, 0, 2, 1))),
		dhcpv4.WithOption(dhcpv4.OptSubnetMask(net.CIDRMask(24, 32))),
		dhcpv4.WithOption(dhcpv4.OptRouter(net.IPv4(192, 0, 2, 1))),
		dhcpv4.WithOption(dhcpv4.OptDNS(net.IPv4(192, 0, 2, 53))),
		dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(time.Hour)),
	}
	m, err := dhcpv4.New(append(base, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	// Through the wire format, as the client sees it.
	m, err = dhcpv4.FromBytes(m.ToBytes())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLeaseFromACK(t *testing.T) {
	tests := []struct {
		name   string
		mods   []dhcpv4.Modifier
		reason string
		t1, t2 time.Duration
		addr   string
	}{
		{name: "RFC 2131 4.4.5: T1 and T2 default to 0.5 and 0.875 of the lease", t1: 30 * time.Minute, t2: 52*time.Minute + 30*time.Second, addr: "192.0.2.100/24"},
		{name: "RFC 2132 9.11/9.12: server-given T1 and T2", mods: []dhcpv4.Modifier{
			dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(10 * time.Minute)),
			dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(20 * time.Minute)),
		}, t1: 10 * time.Minute, t2: 20 * time.Minute, addr: "192.0.2.100/24"},
		{name: "T1 > T2 falls back to the defaults", mods: []dhcpv4.Modifier{
			dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(40 * time.Minute)),
			dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(20 * time.Minute)),
		}, t1: 30 * time.Minute, t2: 52*time.Minute + 30*time.Second, addr: "192.0.2.100/24"},
		{name: "no subnet mask: a /32", mods: []dhcpv4.Modifier{func(d *dhcpv4.DHCPv4) { d.Options.Del(dhcpv4.OptionSubnetMask) }},
			t1: 30 * time.Minute, t2: 52*time.Minute + 30*time.Second, addr: "192.0.2.100/32"},
		{name: "RFC 2131 Table 3: an ACK carries the lease time", mods: []dhcpv4.Modifier{func(d *dhcpv4.DHCPv4) { d.Options.Del(dhcpv4.OptionIPAddressLeaseTime) }}, reason: v4NoLease},
		{name: "RFC 2131 Table 3: an ACK carries the server identifier", mods: []dhcpv4.Modifier{func(d *dhcpv4.DHCPv4) { d.Options.Del(dhcpv4.OptionServerIdentifier) }}, reason: v4NoServer},
		{name: "no address", mods: []dhcpv4.Modifier{dhcpv4.WithYourIP(net.IPv4zero)}, reason: v4NoAddress},
		{name: "non-contiguous mask", mods: []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptSubnetMask(net.IPv4Mask(255, 0, 255, 0)))}, reason: v4BadMask},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := leaseFromACK(ack(t, tt.mods...), t0)
			if tt.reason != "" {
				ve, ok := err.(*rejection)
				if !ok || ve.reason != tt.reason {
					t.Fatalf("err %v, want reason %s", err, tt.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.Addr != netip.MustParsePrefix(tt.addr) || l.Router != netip.MustParseAddr("192.0.2.1") ||
				len(l.DNS) != 1 || l.DNS[0] != netip.MustParseAddr("192.0.2.53") {
				t.Errorf("lease %+v", l)
			}
			if !l.T1.Equal(t0.Add(tt.t1)) || !l.T2.Equal(t0.Add(tt.t2)) || !l.Expires.Equal(t0.Add(time.Hour)) {
				t.Errorf("T1 %v T2 %v expires %v; want %v %v 1h", l.T1.Sub(t0), l.T2.Sub(t0), l.Expires.Sub(t0), tt.t1, tt.t2)
			}
			p := l.public()
			if p.Addr != l.Addr || !p.Expires.Equal(l.Expires) {
				t.Errorf("public %+v", p)
			}
		})
	}
}

// FuzzACK: bytes from the DHCPv4 server → lease decision. Never panics; an
// accepted lease is consistent.
func FuzzACK(f *testing.F) {
	f.Add(ack(f).ToBytes())
	f.Add(ack(f, dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(40*time.Minute))).ToBytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		l, err := leaseFromACK(m, t0)
		if err != nil {
			return
		}
		if !l.Addr.IsValid() || !l.Addr.Addr().Is4() || l.T1.After(l.T2) || l.T2.After(l.Expires) || !l.Expires.After(t0) {
			t.Fatalf("inconsistent lease %+v", l)
		}
	})
}
