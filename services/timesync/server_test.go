package timesync

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
)

// clientRequest is an NTPv4 client packet with the given transmit
// timestamp.
func clientRequest(version, mode byte, transmit uint64) []byte {
	b := make([]byte, headerLen)
	b[0] = version<<3 | mode
	b[2] = 6 // poll 64 s
	binary.BigEndian.PutUint64(b[40:], transmit)
	return b
}

// parsed is a reply's fields, for comparing.
type parsed struct {
	leap, version, mode, stratum byte
	poll                         int8
	refID                        uint32
	ref, origin, rx, tx          uint64
	rootDelay, rootDisp          uint32
}

func parseReply(t *testing.T, b []byte) parsed {
	t.Helper()
	if len(b) != headerLen {
		t.Fatalf("reply of %d octets, want %d", len(b), headerLen)
	}
	return parsed{
		leap: b[0] >> 6, version: b[0] >> 3 & 7, mode: b[0] & 7, stratum: b[1], poll: int8(b[2]),
		rootDelay: binary.BigEndian.Uint32(b[4:]), rootDisp: binary.BigEndian.Uint32(b[8:]),
		refID: binary.BigEndian.Uint32(b[12:]), ref: binary.BigEndian.Uint64(b[16:]),
		origin: binary.BigEndian.Uint64(b[24:]), rx: binary.BigEndian.Uint64(b[32:]), tx: binary.BigEndian.Uint64(b[40:]),
	}
}

var lanClient = netip.MustParseAddrPort("[fd00:1:2:3::42]:40123")

func TestAnswer(t *testing.T) {
	const xmit = 0xe0c1_2345_6789_abcd
	synced := upstream{synced: true, stratum: 8, refID: refIDOf(netip.MustParseAddr("192.0.2.1")),
		refTime: realTime.Add(-time.Minute), rootDelay: 10 * time.Millisecond, rootDispersion: time.Millisecond}
	tests := []struct {
		name   string
		up     upstream
		req    []byte
		reason string
		check  func(t *testing.T, p parsed)
	}{
		{"RFC 5905 §9.2: a client request gets a server reply, stratum = upstream + 1", synced, clientRequest(4, modeClient, xmit), "",
			func(t *testing.T, p parsed) {
				if p.mode != modeServer || p.version != 4 || p.leap != leapNone || p.stratum != 9 || p.poll != 6 {
					t.Errorf("header %+v", p)
				}
				if p.refID != 0xc0000201 {
					t.Errorf("RFC 5905 §7.3: refid %08x, want the IPv4 upstream 192.0.2.1", p.refID)
				}
				if p.origin != xmit {
					t.Errorf("RFC 5905 §8: origin %x, want the request's transmit %x", p.origin, uint64(xmit))
				}
				if p.rx != timestamp(realTime) || p.tx < p.rx {
					t.Errorf("receive %x transmit %x, want %x and not earlier", p.rx, p.tx, timestamp(realTime))
				}
				if p.ref != timestamp(realTime.Add(-time.Minute)) {
					t.Errorf("reference time %x", p.ref)
				}
				// 10 ms root delay, and 1 ms + 15 ppm of a minute's dispersion.
				if p.rootDelay != shortFormat(10*time.Millisecond) || p.rootDisp != shortFormat(time.Millisecond+900*time.Microsecond) {
					t.Errorf("root delay %d dispersion %d", p.rootDelay, p.rootDisp)
				}
			}},
		{"RFC 5905 §7.3: the upstream's leap warning is passed on",
			upstream{synced: true, stratum: 2, leap: uint8(1), refTime: realTime}, clientRequest(4, modeClient, xmit), "",
			func(t *testing.T, p parsed) {
				if p.leap != 1 || p.stratum != 3 {
					t.Errorf("leap %d stratum %d, want 1 and 3", p.leap, p.stratum)
				}
			}},
		{"RFC 4330 §5: the reply has the request's version (NTPv3)", synced, clientRequest(3, modeClient, xmit), "",
			func(t *testing.T, p parsed) {
				if p.version != 3 {
					t.Errorf("version %d, want 3", p.version)
				}
			}},
		{"RFC 5905 §7.3: unsynchronised: leap 3, stratum 16, no reference", upstream{}, clientRequest(4, modeClient, xmit), "",
			func(t *testing.T, p parsed) {
				if p.leap != leapAlarm || p.stratum != 16 || p.refID != 0 || p.ref != 0 || p.origin != xmit {
					t.Errorf("header %+v", p)
				}
			}},
		{"a day without a sync: unsynchronised again", upstream{synced: true, stratum: 2, refTime: realTime.Add(-25 * time.Hour)},
			clientRequest(4, modeClient, xmit), "",
			func(t *testing.T, p parsed) {
				if p.leap != leapAlarm || p.stratum != 16 {
					t.Errorf("header %+v", p)
				}
			}},
		{"an upstream at stratum 15 leaves nothing to serve", upstream{synced: true, stratum: 15, refTime: realTime},
			clientRequest(4, modeClient, xmit), "",
			func(t *testing.T, p parsed) {
				if p.stratum != 16 || p.leap != leapAlarm {
					t.Errorf("header %+v", p)
				}
			}},
		{"short packet", synced, clientRequest(4, modeClient, xmit)[:47], DropShort, nil},
		{"version 0", synced, clientRequest(0, modeClient, xmit), DropVersion, nil},
		{"NTPv5 is a draft", synced, clientRequest(5, modeClient, xmit), DropVersion, nil},
		{"RFC 5905 §9.2: a server reply is not answered (no loops)", synced, clientRequest(4, modeServer, xmit), DropMode, nil},
		{"symmetric active is not served", synced, clientRequest(4, 1, xmit), DropMode, nil},
		{"broadcast is not served", synced, clientRequest(4, 5, xmit), DropMode, nil},
		{"mode 6 control (ntpq) is not served", synced, clientRequest(2, 6, xmit), DropMode, nil},
		{"mode 7 private (the monlist amplifier) is not served", synced, clientRequest(2, 7, xmit), DropMode, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{t: realTime}
			s, _ := newTestService(t, clock, "")
			s.up = tt.up
			out, reason := s.answer(tt.req, lanClient, realTime)
			if reason != tt.reason {
				t.Fatalf("reason %q, want %q", reason, tt.reason)
			}
			if tt.reason != "" {
				if out != nil {
					t.Error("a reply with a drop reason")
				}
				return
			}
			if len(out) > len(tt.req) {
				t.Errorf("reply of %d octets to a request of %d: amplification", len(out), len(tt.req))
			}
			tt.check(t, parseReply(t, out))
		})
	}
}

// A request with extension fields or a MAC is answered with the bare
// header: never more than the client sent.
func TestAnswerIgnoresExtensions(t *testing.T) {
	s, _ := newTestService(t, &fakeClock{t: realTime}, "")
	req := append(clientRequest(4, modeClient, 1), make([]byte, 20)...)
	out, reason := s.answer(req, lanClient, realTime)
	if reason != "" || len(out) != headerLen {
		t.Errorf("reply %d octets, reason %q", len(out), reason)
	}
}

func TestRateLimit(t *testing.T) {
	clock := &fakeClock{t: realTime}
	s, _ := newTestService(t, clock, "")
	req := clientRequest(4, modeClient, 1)
	answered := 0
	for range 20 {
		if out, _ := s.answer(req, lanClient, realTime); out != nil {
			answered++
		}
	}
	if answered != clientBurst {
		t.Errorf("%d of a burst of 20 answered, want %d", answered, clientBurst)
	}
	// Another client is not affected.
	if out, why := s.answer(req, netip.MustParseAddrPort("203.0.113.130:123"), realTime); out == nil {
		t.Errorf("another client refused: %s", why)
	}
	// One interval later the client gets one more answer, not a burst.
	later := realTime.Add(clientInterval)
	if out, _ := s.answer(req, lanClient, later); out == nil {
		t.Error("no answer after one interval")
	}
	if out, _ := s.answer(req, lanClient, later); out != nil {
		t.Error("two answers after one interval")
	}
	// A client that paused long enough gets its whole burst back.
	much := later.Add(clientBurst * clientInterval)
	for i := range clientBurst {
		if out, _ := s.answer(req, lanClient, much); out == nil {
			t.Fatalf("answer %d of a new burst refused", i)
		}
	}
}

// The table of clients is bounded; clients idle long enough are forgotten
// to make room, and when none is, new clients are refused and counted.
func TestRateLimitTableBound(t *testing.T) {
	l := newLimiter()
	for i := range maxClients {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if ok, _ := l.allow(a, realTime); !ok {
			t.Fatalf("client %d refused", i)
		}
	}
	newcomer := netip.MustParseAddr("192.0.2.200")
	if ok, why := l.allow(newcomer, realTime); ok || why != DropTable {
		t.Errorf("a client beyond the bound: %v %q, want refused as %s", ok, why, DropTable)
	}
	if ok, _ := l.allow(newcomer, realTime.Add(clientInterval)); !ok {
		t.Error("refused after the others went idle")
	}
	if len(l.full) > maxClients {
		t.Errorf("table holds %d clients, bound %d", len(l.full), maxClients)
	}
}

func TestTimestamp(t *testing.T) {
	tests := []struct {
		name string
		t    time.Time
		want uint64
	}{
		{"RFC 5905 §6: the Unix epoch is 2208988800 s after the NTP epoch", time.Unix(0, 0), 2208988800 << 32},
		{"half a second is 2^31", time.Unix(0, 5e8), 2208988800<<32 | 1<<31},
		{"RFC 5905 §6: era 1 starts 2036-02-07 06:28:16 UTC", time.Date(2036, 2, 7, 6, 28, 16, 0, time.UTC), 0},
		{"zero is zero", time.Time{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := timestamp(tt.t); got != tt.want {
				t.Errorf("timestamp = %x, want %x", got, tt.want)
			}
		})
	}
	if got := shortFormat(1500 * time.Millisecond); got != 0x00018000 {
		t.Errorf("shortFormat(1.5 s) = %x", got)
	}
	if got := shortFormat(100000 * time.Second); got != 0xffffffff {
		t.Errorf("shortFormat saturates: %x", got)
	}
}

func TestRefID(t *testing.T) {
	if got := refIDOf(netip.MustParseAddr("::ffff:192.0.2.1")); got != 0xc0000201 {
		t.Errorf("IPv4-mapped refid %08x", got)
	}
	// RFC 5905 §7.3: the first four octets of the MD5 of the address.
	if got := refIDOf(netip.MustParseAddr("2001:db8:0:1::1")); got == 0 || got == refIDOf(netip.MustParseAddr("2001:db8:0:1::2")) {
		t.Errorf("IPv6 refid %08x", got)
	}
}
