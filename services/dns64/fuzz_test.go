package dns64

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// FuzzHandler feeds arbitrary bytes to the handler as the UDP and TCP
// servers do (handleWire: bytes in, answer bytes out) and checks that it
// never panics, and that whatever it answers parses, carries the query's ID
// and fits the transport.
func FuzzHandler(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
		do    bool
	}{
		{"v4only.example.test.", dns.TypeAAAA, false},
		{"chain.example.test.", dns.TypeAAAA, true},
		{"big.example.test.", dns.TypeAAAA, false},
		{"ipv4only.arpa.", dns.TypeAAAA, false},
		{"laptop.home.arpa.", dns.TypeA, false},
		{"0.5.4.6.3.3.6.c.0.0.0.0.0.0.0.0.0.0.0.0.4.6.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", dns.TypePTR, false},
		{"130.113.0.203.in-addr.arpa.", dns.TypePTR, false},
		{"example.test.", dns.TypeANY, false},
	} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		if q.do {
			m.SetEdns0(4096, true)
		}
		wire, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(wire, false)
		f.Add(wire, false) // again: now from the cache and the memo
	}
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 255, 0, 1}, true)
	f.Add([]byte{}, false)

	z := newTestZone()
	s, err := New(Config{Exchange: z.exchange, UpstreamTimeout: time.Millisecond, QueryTimeout: 2 * time.Millisecond})
	if err != nil {
		f.Fatal(err)
	}
	s.Update(testPlan())
	f.Fuzz(func(t *testing.T, wire []byte, tcp bool) {
		// Both passes the UDP reader makes: cache only, then with upstreams.
		for _, pass := range []*queryPass{{cacheOnly: true}, {counted: true}} {
			out := s.handleWire(context.Background(), pass, wire, clientOn, listenRDNSS, tcp, nil)
			if out == nil {
				continue
			}
			if pass.cacheOnly && !pass.missed && !tcp {
				checkMemo(t, s, wire, pass, out)
				checkMemoLater(t, s, wire, 7)
			}
			m := new(dns.Msg)
			if err := m.Unpack(out); err != nil {
				t.Fatalf("answer does not parse: %v", err)
			}
			if !m.Response || m.Id != uint16(wire[0])<<8|uint16(wire[1]) {
				t.Fatalf("answer is not a response to the query's ID: %v", m)
			}
			limit := dns.MaxMsgSize
			if !tcp {
				limit = dns.MinMsgSize
				r := new(dns.Msg)
				if r.Unpack(wire) == nil {
					if opt := r.IsEdns0(); opt != nil {
						limit = max(dns.MinMsgSize, min(int(opt.UDPSize()), serverPayload))
					}
				}
			}
			if len(out) > limit {
				t.Fatalf("answer of %d bytes over a limit of %d", len(out), limit)
			}
		}
	})
}

// checkMemo remembers out, the full path's answer to wire, and checks that
// the memo answers a query with the same key but every bit the key leaves
// out changed exactly as the full path answers that query.
func checkMemo(t *testing.T, s *Service, wire []byte, pass *queryPass, out []byte) {
	s.remember(wire, clientOn, listenRDNSS, pass, out)
	other := append([]byte(nil), wire...)
	other[0], other[1] = ^other[0], ^other[1] // ID
	other[2] ^= 0x04 | 0x02                   // AA, TC
	other[3] ^= 0x40 | 0x20 | 0x0f            // Z, AD, RCODE
	if q, ok := parseMemoQuery(wire); ok && q.flags&memoEDNS != 0 {
		other[len(other)-6] ^= 0xff // extended RCODE
		other[len(other)-3] ^= 0xff // flags other than DO
	}
	memo, ok := s.answerFromMemo(other, clientOn, listenRDNSS, make([]byte, 0, serverPayload), time.Now())
	if !ok {
		return
	}
	full := s.handleWire(context.Background(), &queryPass{cacheOnly: true}, other, clientOn, listenRDNSS, false, nil)
	if bytes.Equal(memo, full) {
		return
	}
	again := s.handleWire(context.Background(), &queryPass{cacheOnly: true}, wire, clientOn, listenRDNSS, false, nil)
	if bytes.Equal(again, out) { // no TTL ticked meanwhile
		t.Fatalf("memo answer %x, full path %x", memo, full)
	}
}

// checkMemoLater checks the memo's answer to wire some ticks from now
// against the full path's at the same instant (the memo ages TTLs in place).
func checkMemoLater(t *testing.T, s *Service, wire []byte, ticks int64) {
	later := s.cache.at(s.cache.tick(time.Now()) + ticks)
	memo, ok := s.answerFromMemo(wire, clientOn, listenRDNSS, make([]byte, 0, serverPayload), later)
	if !ok {
		return
	}
	full := s.handleWire(context.Background(), &queryPass{cacheOnly: true, now: later}, wire, clientOn, listenRDNSS, false, nil)
	if !bytes.Equal(memo, full) {
		t.Fatalf("%d ticks later: memo answer %x, full path %x", ticks, memo, full)
	}
}
