package dslite

import (
	"net/netip"
	"testing"
)

func TestSoftwireMTU(t *testing.T) {
	for _, c := range []struct {
		name     string
		wan      int
		mtu, mss int
	}{
		{"RFC 6333 §5.3: Ethernet's 1500 less the IPv6 header", 1500, 1460, 1420},
		{"a PPPoE WAN", 1492, 1452, 1412},
		{"an unknown WAN MTU counts as 1500", 0, 1460, 1420},
		{"below IPv6's minimum is not believed", 1000, 1460, 1420},
		{"jumbo frames", 9000, 8960, 8920},
	} {
		sw := Softwire{MTU: c.wan}
		if sw.MTU4() != c.mtu || sw.MSS() != c.mss {
			t.Errorf("%s: MTU4 %d MSS %d, want %d %d", c.name, sw.MTU4(), sw.MSS(), c.mtu, c.mss)
		}
	}
}

func TestSoftwireCheck(t *testing.T) {
	ok := Softwire{AFTR: testAFTR, B4: testB4, Interface: "uplink0", Ifindex: 2}
	for _, c := range []struct {
		name  string
		edit  func(*Softwire)
		valid bool
	}{
		{"a global AFTR and B4 on the WAN", func(*Softwire) {}, true},
		{"off is always valid", func(s *Softwire) { *s = Softwire{} }, true},
		{"a link-local AFTR", func(s *Softwire) { s.AFTR = netip.MustParseAddr("fe80::1") }, false},
		{"no B4 address", func(s *Softwire) { s.B4 = netip.Addr{} }, false},
		{"an IPv4 AFTR", func(s *Softwire) { s.AFTR = netip.MustParseAddr("192.0.2.1") }, false},
		{"AFTR and B4 the same", func(s *Softwire) { s.B4 = s.AFTR }, false},
		{"no interface", func(s *Softwire) { s.Ifindex = 0 }, false},
	} {
		s := ok
		c.edit(&s)
		if err := s.Check(); (err == nil) != c.valid {
			t.Errorf("%s: Check() = %v", c.name, err)
		}
	}
}
