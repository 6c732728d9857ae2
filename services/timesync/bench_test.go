package timesync

import (
	"net/netip"
	"testing"
)

// BenchmarkAnswer is the server's work per request from a LAN client
// (parse, rate limit, reply), as shipped: synchronised, one client within
// its rate.
func BenchmarkAnswer(b *testing.B) {
	s, _ := newTestService(b, &fakeClock{t: realTime}, "")
	s.up = upstream{synced: true, stratum: 2, refTime: realTime, refID: refIDOf(ntp1)}
	req := clientRequest(4, modeClient, 0x1234)
	from := netip.MustParseAddrPort("[fd00:1::42]:123")
	now := realTime
	b.ReportAllocs()
	for b.Loop() {
		// A new interval each time, so that the limiter answers.
		now = now.Add(clientInterval)
		if out, why := s.answer(req, from, now); out == nil {
			b.Fatal(why)
		}
	}

}
