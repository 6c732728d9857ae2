package timesync

import (
	"encoding/binary"
	"testing"
)

// FuzzAnswer: bytes from a LAN client → the server's decision. Never
// panics; a reply is a 48-octet server-mode packet no longer than the
// request, echoing the request's transmit timestamp.
func FuzzAnswer(f *testing.F) {
	f.Add(clientRequest(4, modeClient, 0x1234))
	f.Add(clientRequest(3, modeClient, 0))
	f.Add(clientRequest(2, 7, 1))
	f.Add(clientRequest(4, modeServer, 1))
	f.Add(append(clientRequest(4, modeClient, 1), 0, 1, 2, 3))
	f.Add([]byte{0x23})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, _ := newTestService(t, &fakeClock{t: realTime}, "")
		s.up = upstream{synced: len(b)%2 == 0, stratum: uint8(len(b)), refTime: realTime}
		out, reason := s.answer(b, lanClient, realTime)
		if out == nil {
			if reason == "" {
				t.Fatal("no reply and no reason")
			}
			return
		}
		if reason != "" || len(out) != headerLen || len(out) > len(b) {
			t.Fatalf("reply of %d octets to %d, reason %q", len(out), len(b), reason)
		}
		if out[0]&7 != modeServer || out[0]>>3&7 != b[0]>>3&7 {
			t.Fatalf("reply header %08b to %08b", out[0], b[0])
		}
		if binary.BigEndian.Uint64(out[24:]) != binary.BigEndian.Uint64(b[40:48]) {
			t.Fatal("origin is not the request's transmit timestamp")
		}
		if stratum := out[1]; stratum == 0 || stratum > maxStratum || (stratum == maxStratum) != (out[0]>>6 == leapAlarm) {
			t.Fatalf("stratum %d with leap %d", stratum, out[0]>>6)
		}
	})
}
