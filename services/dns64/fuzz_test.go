package dns64

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// FuzzHandler feeds arbitrary bytes to the handler the way the server does
// (parse, then ServeDNS on success) and checks that it never panics, and
// that whatever it answers packs and fits the transport.
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
	}
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 255, 0, 1}, true)
	f.Add([]byte{}, false)

	z := newTestZone()
	s, err := New(Config{Exchange: z.exchange, UpstreamTimeout: time.Millisecond, QueryTimeout: 2 * time.Millisecond, RateLimit: -1})
	if err != nil {
		f.Fatal(err)
	}
	s.Update(testPlan())
	f.Fuzz(func(t *testing.T, wire []byte, tcp bool) {
		r := new(dns.Msg)
		if err := r.Unpack(wire); err != nil {
			return // the server drops what does not parse (counted there)
		}
		m := s.handle(context.Background(), clientOn, listenRDNSS, tcp, r)
		if m == nil {
			return
		}
		out, err := m.Pack()
		if err != nil {
			t.Fatalf("answer does not pack: %v\n%v", err, m)
		}
		limit := dns.MaxMsgSize
		if !tcp {
			limit = dns.MinMsgSize
			if opt := r.IsEdns0(); opt != nil {
				limit = max(dns.MinMsgSize, min(int(opt.UDPSize()), serverPayload))
			}
		}
		if len(out) > limit {
			t.Fatalf("answer of %d bytes over a limit of %d", len(out), limit)
		}
		if m.Id != r.Id {
			t.Fatalf("answer ID %d for query ID %d", m.Id, r.Id)
		}
	})
}
