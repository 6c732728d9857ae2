package dns64

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// benchService returns a service with the test zone as its upstream and the
// answer to an EDNS query for name and qtype in its cache.
func benchService(b testing.TB, name string, qtype uint16) (s *Service, wire, buf []byte) {
	z := newTestZone()
	s, err := New(Config{Exchange: z.exchange})
	if err != nil {
		b.Fatal(err)
	}
	s.Update(testPlan())
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.SetEdns0(1232, false)
	if wire, err = q.Pack(); err != nil {
		b.Fatal(err)
	}
	buf = make([]byte, 0, serverPayload)
	if s.handleWire(context.Background(), nil, wire, clientOn, listenRDNSS, false, buf) == nil {
		b.Fatal("no answer")
	}
	return s, wire, buf
}

// The per-query cost of the UDP fast path (parse, cache, synthesize, pack),
// without the sockets; bench/run.sh measures the whole server.
func benchmarkHandleWire(b *testing.B, name string, qtype uint16) {
	s, wire, buf := benchService(b, name, qtype)
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
	s, wire, buf := benchService(b, name, qtype)
	b.ReportAllocs()
	for b.Loop() {
		now := time.Now()
		if _, ok := s.answerFromMemo(wire, clientOn, listenRDNSS, buf, now); ok {
			continue
		}
		// The first time, and again when a cached response expires: the
		// full path, remembered.
		pass := &queryPass{cacheOnly: true, now: now}
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
