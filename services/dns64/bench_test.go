package dns64

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The per-query cost of the UDP fast path (parse, cache, synthesize, pack),
// without the sockets; bench/run.sh measures the whole server.
func benchmarkHandleWire(b *testing.B, name string, qtype uint16) {
	z := newTestZone()
	s, err := New(Config{Exchange: z.exchange, RateLimit: -1})
	if err != nil {
		b.Fatal(err)
	}
	s.Update(testPlan())
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.SetEdns0(1232, false)
	wire, err := q.Pack()
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, serverPayload)
	if s.handleWire(context.Background(), nil, wire, clientOn, listenRDNSS, false, buf) == nil {
		b.Fatal("no answer")
	}
	b.ReportAllocs()
	for b.Loop() {
		pass := &queryPass{cacheOnly: true}
		if s.handleWire(context.Background(), pass, wire, clientOn, listenRDNSS, false, buf) == nil || pass.missed {
			b.Fatal("not answered from the cache")
		}
	}
}

func BenchmarkHandleWireCachedAAAA(b *testing.B) {
	benchmarkHandleWire(b, "dual.example.test.", dns.TypeAAAA)
}

func BenchmarkHandleWireSynthesized(b *testing.B) {
	benchmarkHandleWire(b, "v4only.example.test.", dns.TypeAAAA)
}

// The per-query cost of a repeated question answered from the memo, the path
// most queries of a busy network take (bench/run.sh, docs/performance.md).
func benchmarkMemo(b *testing.B, name string, qtype uint16) {
	z := newTestZone()
	s, err := New(Config{Exchange: z.exchange, RateLimit: -1})
	if err != nil {
		b.Fatal(err)
	}
	s.Update(testPlan())
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.SetEdns0(1232, false)
	wire, err := q.Pack()
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, serverPayload)
	s.handleWire(context.Background(), nil, wire, clientOn, listenRDNSS, false, buf) // fill the cache
	b.ReportAllocs()
	for b.Loop() {
		now := time.Now()
		if _, ok := s.answerFromMemo(wire, clientOn, listenRDNSS, buf, now); ok {
			continue
		}
		// Once a second (a TTL ticks): the full path, remembered again.
		pass := &queryPass{cacheOnly: true}
		resp := s.handleWire(context.Background(), pass, wire, clientOn, listenRDNSS, false, buf)
		if resp == nil || pass.missed {
			b.Fatal("not answered from the cache")
		}
		s.remember(wire, clientOn, listenRDNSS, pass, resp)
	}
}

func BenchmarkMemoCachedAAAA(b *testing.B) {
	benchmarkMemo(b, "dual.example.test.", dns.TypeAAAA)
}

func BenchmarkMemoSynthesized(b *testing.B) {
	benchmarkMemo(b, "v4only.example.test.", dns.TypeAAAA)
}
