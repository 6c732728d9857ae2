package dhcp6pd

import (
	"crypto/md5"
	"net"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// FuzzReceive feeds arbitrary bytes, as if from the server, to the client in
// each phase of the exchange: packet bytes → decision. It must never panic,
// and whatever it decides must leave a consistent state: a lease only with a
// prefix the delegation policy accepts, a wake-up time, and no bound phase without a lease.
func FuzzReceive(f *testing.F) {
	seed := func(typ dhcpv6.MessageType, opts ...dhcpv6.Option) {
		m := &dhcpv6.Message{MessageType: typ}
		m.AddOption(dhcpv6.OptClientID(testClientDUID))
		m.AddOption(dhcpv6.OptServerID(testServerID))
		for _, o := range opts {
			m.AddOption(o)
		}
		f.Add(m.ToBytes())
	}
	h := time.Hour
	seed(dhcpv6.MessageTypeAdvertise, iapdOpt(h, 2*h, prefixOpt("2001:db8:1000:100::/56", 3*h, 4*h)), dhcpv6.OptPreference(255))
	seed(dhcpv6.MessageTypeReply, iapdOpt(h, 2*h, prefixOpt("2001:db8:1000:100::/56", 3*h, 4*h)), dhcpv6.OptDNS(net.ParseIP("2001:db8::53")),
		authOptionBytes(1, authInfoKey, []byte("0123456789abcdef")))
	seed(dhcpv6.MessageTypeReply, iapdOpt(2*h, h, prefixOpt("2001:db8:1000:100::/56", 3*h, 4*h)))
	seed(dhcpv6.MessageTypeReply, iapdOpt(h, 2*h, prefixOpt("2001:db8:1000:100::/80", 3*h, 4*h)))
	seed(dhcpv6.MessageTypeReply, iapdOpt(h, 2*h, prefixOpt("fd00:1000::/48", 3*h, 4*h)))
	seed(dhcpv6.MessageTypeReply, iapdOpt(h, 2*h, prefixOpt("2000::/16", 3*h, 4*h)))
	seed(dhcpv6.MessageTypeReply, iapdOpt(h, 2*h, prefixOpt("2001:db8:1000:100::/56", 0, 0), prefixOpt("2001:db8:2000::/56", h, h)))
	seed(dhcpv6.MessageTypeReply, iapdOpt(0, 0, &dhcpv6.OptStatusCode{StatusCode: iana.StatusNoBinding}))
	seed(dhcpv6.MessageTypeReply, iapdOpt(0, 0, &dhcpv6.OptStatusCode{StatusCode: iana.StatusNoPrefixAvail}))
	seed(dhcpv6.MessageTypeReply, &dhcpv6.OptStatusCode{StatusCode: iana.StatusUnspecFail})
	seed(dhcpv6.MessageTypeReconfigure, &dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionReconfMessage, OptionData: []byte{5}},
		authOptionBytes(2, authInfoHMAC, make([]byte, md5.Size)))
	f.Add([]byte{})
	f.Add([]byte{7, 0, 0, 0, 0, 1, 0, 5, 0})

	f.Fuzz(func(t *testing.T, data []byte) {
		for _, ph := range []phase{phaseSolicit, phaseRequest, phaseBound, phaseRenew, phaseRebind, phaseBackoff} {
			hs := newHarness(t)
			switch ph {
			case phaseSolicit:
				hs.m.start(nil, hs.now)
				hs.advance()
			case phaseRequest:
				hs.m.start(nil, hs.now)
				hs.advance()
				hs.answer(hs.last(dhcpv6.MessageTypeSolicit), dhcpv6.MessageTypeAdvertise, iapdOpt(h, 2*h, prefixOpt("2001:db8:1000:100::/56", 3*h, 4*h)))
				hs.advance()
			default:
				hs.bind("2001:db8:1000:100::/56", h, 2*h, 3*h, 4*h, authOptionBytes(1, authInfoKey, []byte("0123456789abcdef")))
				switch ph {
				case phaseRenew:
					hs.advance()
				case phaseRebind:
					hs.m.beginRebind(hs.now)
				case phaseBackoff:
					hs.m.beginBackoff(hs.now)
				}
			}
			b := append([]byte(nil), data...)
			// Reach past the transaction ID check most of the time.
			if len(b) >= 4 && b[0] != byte(dhcpv6.MessageTypeReconfigure) {
				copy(b[1:4], hs.m.xid[:])
			}
			hs.m.receive(b, len(b) > 0 && b[0]%2 == 0, hs.now)
			if l := hs.m.lease; l != nil {
				if !l.Prefix.IsValid() || DelegationPolicy(l.Prefix) != nil || l.PreferredUntil.After(l.ValidUntil) || l.T1.After(l.T2) {
					t.Fatalf("inconsistent lease %+v", l)
				}
			} else if hs.m.phase == phaseBound {
				t.Fatal("bound without a lease")
			}
			if !hs.m.wake().After(hs.now.Add(-time.Nanosecond)) && hs.m.phase != phaseBound {
				t.Fatalf("wake-up %v in the past", hs.m.wake())
			}
			hs.m.tick(hs.m.wake())
		}
		// Restarted with a stored lease the clock cannot judge: whatever
		// arrives, the stored prefix is not offered without a Reply that
		// grants it, and a prefix never offered is never reported lost.
		hs := newHarness(t)
		untrusted(hs)
		hs.m.start(stored(hs.now), hs.now)
		b := append([]byte(nil), data...)
		if len(b) >= 4 && b[0] != byte(dhcpv6.MessageTypeReconfigure) {
			copy(b[1:4], hs.m.xid[:])
		}
		hs.m.receive(b, len(b) > 0 && b[0]%2 == 0, hs.now)
		if len(hs.lost) != 0 {
			t.Fatalf("lost %v, never reported", hs.lost)
		}
		if hs.m.unconfirmed() && len(hs.leases) != 0 {
			t.Fatalf("reported %v while unconfirmed", hs.leases)
		}
		if len(hs.leases) > 0 && hs.m.stats.Snapshot().Leases == 0 {
			t.Fatal("a lease reported without an accepted Reply")
		}
	})
}
