package nsresponder

import (
	"net/netip"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	other := netip.MustParseAddr("2001:db8:0:1::20")

	t.Run("a source gets its burst, then its rate", func(t *testing.T) {
		l := newLimiter(Limits{PerSource: 10, PerSourceBurst: 3, All: 1000, AllBurst: 1000})
		for i := range 3 {
			if ok, r := l.allow(hostAddr, now); !ok {
				t.Fatalf("answer %d refused (%s) within the burst", i, r)
			}
		}
		if ok, r := l.allow(hostAddr, now); ok || r != ReasonRateSource {
			t.Errorf("4th answer at once: %v %q, want refused %q", ok, r, ReasonRateSource)
		}
		if ok, _ := l.allow(hostAddr, now.Add(100*time.Millisecond)); !ok {
			t.Error("refused after 1/rate")
		}
		if ok, _ := l.allow(other, now); !ok {
			t.Error("a second source pays for the first one's flood")
		}
	})
	t.Run("all sources share the total", func(t *testing.T) {
		l := newLimiter(Limits{PerSource: 10, PerSourceBurst: 10, All: 1, AllBurst: 2})
		l.allow(hostAddr, now)
		l.allow(other, now)
		if ok, r := l.allow(hostAddr, now); ok || r != ReasonRateAll {
			t.Errorf("3rd answer in all: %v %q, want refused %q", ok, r, ReasonRateAll)
		}
	})
	t.Run("a flooding source uses up its own share, not the total", func(t *testing.T) {
		l := newLimiter(Limits{PerSource: 1, PerSourceBurst: 2, All: 1, AllBurst: 3})
		for range 100 {
			l.allow(hostAddr, now)
		}
		if ok, r := l.allow(other, now); !ok {
			t.Errorf("another source refused (%s) after one source flooded", r)
		}
	})
	t.Run("the sources tracked are bounded; idle ones make room", func(t *testing.T) {
		l := newLimiter(Limits{PerSource: 1, PerSourceBurst: 1, All: 1e6, AllBurst: 1e6, MaxSources: 4})
		addr := func(i int) netip.Addr {
			b := hostAddr.As16()
			b[15] = byte(i)
			return netip.AddrFrom16(b)
		}
		for i := range 4 {
			l.allow(addr(i), now)
		}
		if ok, r := l.allow(addr(9), now); ok || r != ReasonSources {
			t.Errorf("a 5th source while 4 are busy: %v %q, want refused %q", ok, r, ReasonSources)
		}
		if l.tracked() != 4 {
			t.Errorf("tracking %d sources, want the bound of 4", l.tracked())
		}
		if ok, r := l.allow(addr(9), now.Add(2*time.Second)); !ok {
			t.Errorf("refused (%s) once the others are idle", r)
		}
		if l.tracked() != 1 {
			t.Errorf("tracking %d sources after the idle ones were forgotten, want 1", l.tracked())
		}
	})
	t.Run("made-up sources do not grow the table while the total is used up", func(t *testing.T) {
		l := newLimiter(Limits{PerSource: 10, PerSourceBurst: 10, All: 1, AllBurst: 1})
		l.allow(hostAddr, now)
		for i := range 100 {
			b := other.As16()
			b[14], b[15] = byte(i>>8), byte(i)
			if ok, r := l.allow(netip.AddrFrom16(b), now); ok || r != ReasonRateAll {
				t.Fatalf("source %d: %v %q, want refused %q", i, ok, r, ReasonRateAll)
			}
		}
		if l.tracked() != 1 {
			t.Errorf("tracking %d sources, want 1", l.tracked())
		}
	})
}
