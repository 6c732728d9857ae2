package dns64

import (
	"bytes"
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// memoQueries are the questions the memo must answer exactly like the full
// path: every kind of answer the cache-only pass can build.
var memoQueries = []query{
	{name: "v4only.example.test.", qtype: dns.TypeAAAA},
	{name: "v4only.example.test.", qtype: dns.TypeAAAA, client: clientOff},
	{name: "v4only.example.test.", qtype: dns.TypeA},
	{name: "dual.example.test.", qtype: dns.TypeAAAA},
	{name: "dual.example.test.", qtype: dns.TypeAAAA, edns: true},
	{name: "v4only.example.test.", qtype: dns.TypeAAAA, do: true},
	{name: "v4only.example.test.", qtype: dns.TypeAAAA, do: true, cd: true},
	{name: "v4only.example.test.", qtype: dns.TypeAAAA, cd: true},
	{name: "chain2.example.test.", qtype: dns.TypeAAAA},
	{name: "host.sub.example.test.", qtype: dns.TypeAAAA},
	{name: "mapped.example.test.", qtype: dns.TypeAAAA},
	{name: "excluded.example.test.", qtype: dns.TypeAAAA},
	{name: "mixed-excluded.example.test.", qtype: dns.TypeAAAA},
	{name: "missing.example.test.", qtype: dns.TypeAAAA},
	{name: "chain-nx.example.test.", qtype: dns.TypeAAAA},
	{name: "txt-only.example.test.", qtype: dns.TypeAAAA},
	{name: "big.example.test.", qtype: dns.TypeAAAA},
	{name: "big.example.test.", qtype: dns.TypeAAAA, edns: true, size: 4096},
	{name: "big.example.test.", qtype: dns.TypeAAAA, edns: true, size: 700},
	{name: "bigtxt.example.test.", qtype: dns.TypeTXT},
	{name: "mx.example.test.", qtype: dns.TypeMX},
	{name: "0.5.4.6.3.3.6.c.0.0.0.0.0.0.0.0.0.0.0.0.4.6.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", qtype: dns.TypePTR},
}

func queryWire(t testing.TB, q query, id uint16) []byte {
	t.Helper()
	r := q.msg()
	r.Id = id
	wire, err := r.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return wire
}

// fullUDP answers a query the way the UDP reader does without the memo:
// the cache-only pass, then the one allowed to ask upstreams.
func fullUDP(s *Service, wire []byte, client netip.AddrPort) ([]byte, *queryPass) {
	pass := &queryPass{cacheOnly: true}
	resp := s.handleWire(context.Background(), pass, wire, client, listenRDNSS, false, make([]byte, 0, serverPayload))
	if pass.missed {
		return s.handleWire(context.Background(), &queryPass{counted: true}, wire, client, listenRDNSS, false, make([]byte, 0, serverPayload)), pass
	}
	return resp, pass
}

func clientOr(q query) netip.AddrPort {
	if q.client.IsValid() {
		return q.client
	}
	return clientOn
}

// The memo's answer to a query is the full path's answer, byte for byte,
// with the query's own ID.
func TestMemoAnswersLikeTheFullPath(t *testing.T) {
	s := newTestService(t, newTestZone(), nil)
	for _, q := range memoQueries {
		t.Run(q.name+"/"+dns.TypeToString[q.qtype], func(t *testing.T) {
			client := clientOr(q)
			fullUDP(s, queryWire(t, q, 1), client) // fill the cache
			for range 3 {
				wire := queryWire(t, q, 2)
				before, pass := fullUDP(s, wire, client)
				if pass.missed || before == nil {
					t.Fatalf("not answered from the cache")
				}
				s.remember(wire, client, listenRDNSS, pass, before)
				memo, ok := s.answerFromMemo(queryWire(t, q, 3), client, listenRDNSS, make([]byte, 0, serverPayload), time.Now())
				after, _ := fullUDP(s, wire, client)
				if !bytes.Equal(before, after) {
					continue // a TTL ticked meanwhile: try again
				}
				if !ok || memo == nil {
					t.Fatalf("the memo did not answer")
				}
				want := append([]byte{0, 3}, before[2:]...)
				if !bytes.Equal(memo, want) {
					a, b := new(dns.Msg), new(dns.Msg)
					_ = a.Unpack(want)
					_ = b.Unpack(memo)
					t.Fatalf("memo answer differs (-full +memo):\n%s", cmp.Diff(a.String(), b.String()))
				}
				return
			}
			t.Fatal("TTLs kept changing")
		})
	}
}

// A policy change applies to the very next query, whatever the memo holds
// (the answers are remembered per plan).
func TestMemoFollowsPolicyChanges(t *testing.T) {
	s := newTestService(t, newTestZone(), nil)
	q := query{name: "v4only.example.test.", qtype: dns.TypeAAAA}
	wire := queryWire(t, q, 1)
	answers := func() int {
		t.Helper()
		fullUDP(s, wire, clientOn) // fill the cache
		resp, pass := fullUDP(s, wire, clientOn)
		s.remember(wire, clientOn, listenRDNSS, pass, resp)
		resp, ok := s.answerFromMemo(wire, clientOn, listenRDNSS, make([]byte, 0, serverPayload), time.Now())
		if !ok {
			t.Fatal("the memo did not answer")
		}
		m := new(dns.Msg)
		if err := m.Unpack(resp); err != nil {
			t.Fatal(err)
		}
		return len(m.Answer)
	}
	if n := answers(); n != 1 {
		t.Fatalf("DNS64 on: %d answers", n)
	}
	p := testPlan()
	p.Clients[clientOn.Addr()] = ClientPolicy{MAC: "02:00:00:00:00:01", DNS64: false}
	s.Update(p)
	if _, ok := s.answerFromMemo(wire, clientOn, listenRDNSS, make([]byte, 0, serverPayload), time.Now()); ok {
		t.Fatal("the memo answered with the previous plan's answer")
	}
	if n := answers(); n != 0 {
		t.Fatalf("DNS64 switched off, still synthesized: %d answers", n)
	}
}

// The statistics do not depend on whether the memo or the full path
// answered.
func TestMemoCountsLikeTheFullPath(t *testing.T) {
	full := newTestService(t, newTestZone(), nil)
	memo := newTestService(t, newTestZone(), nil)
	for _, q := range memoQueries {
		client := clientOr(q)
		wire := queryWire(t, q, 1)
		fullUDP(full, wire, client)
		fullUDP(memo, wire, client)
		for range 3 {
			fullUDP(full, wire, client)
			if _, ok := memo.answerFromMemo(wire, client, listenRDNSS, make([]byte, 0, serverPayload), time.Now()); !ok {
				resp, pass := fullUDP(memo, wire, client)
				memo.remember(wire, client, listenRDNSS, pass, resp)
			}
		}
	}
	a, b := full.Stats(), memo.Stats()
	if b.Synthesized == 0 || b.Excluded == 0 || b.Local == 0 || b.NXDomain == 0 || b.Truncated == 0 {
		t.Fatalf("the queries do not exercise every counter: %+v", b)
	}
	if b.MemoEntries != len(memoQueries) {
		t.Errorf("%d answers remembered, want %d", b.MemoEntries, len(memoQueries))
	}
	// What the cache holds is not a counter: the memo answers without
	// touching the cache, so an entry that expires mid-test is dropped
	// (and perhaps stored again) on the full-path side only. CI once saw
	// 818 bytes of difference, the size of one entry.
	a.CacheEntries, b.CacheEntries = 0, 0
	a.CacheBytes, b.CacheBytes = 0, 0
	a.MemoEntries, b.MemoEntries = 0, 0
	a.Upstreams, b.Upstreams = nil, nil
	if diff := cmp.Diff(a, b, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
		t.Errorf("stats (-full path +memo):\n%s", diff)
	}
}

// Without aging, a remembered answer lives until the first cached response
// it was made of ages by another tick (its TTLs would change) or expires.
func TestMemoLifetime(t *testing.T) {
	c := newCache(1 << 20)
	tick := c.tick(time.Now())
	next := c.at(tick + 1)
	var p queryPass
	p.cacheOnly = true
	p.cacheHit(tick, next.Add(time.Hour))
	if !p.until(c).Equal(next) {
		t.Errorf("until %v, want the next tick %v", p.until(c), next)
	}
	soon := next.Add(-300 * time.Millisecond)
	p.cacheHit(tick, soon)
	if !p.until(c).Equal(soon) || !p.expires.Equal(soon) {
		t.Errorf("until %v, want %v (the expiry)", p.until(c), soon)
	}
	p.cacheHit(tick, next.Add(time.Hour))
	if !p.until(c).Equal(soon) || p.hits != 3 || p.mixed {
		t.Errorf("until %v, want %v, after %d hits (mixed ticks: %t)", p.until(c), soon, p.hits, p.mixed)
	}
	p.cacheHit(tick+1, next.Add(time.Hour))
	if !p.mixed {
		t.Errorf("hits in ticks %d and %d not noted as mixed", tick, tick+1)
	}
}

// fullUDPAt is fullUDP with the cache's clock set to now.
func fullUDPAt(s *Service, wire []byte, client netip.AddrPort, now time.Time) ([]byte, *queryPass) {
	pass := &queryPass{cacheOnly: true, now: now}
	resp := s.handleWire(context.Background(), pass, wire, client, listenRDNSS, false, make([]byte, 0, serverPayload))
	return resp, pass
}

// A remembered answer ages in place: at any later time until the first of
// its cached responses expires, the memo answers exactly as the full path
// would then. (Answers whose TTLs do not simply count down, such as a cap
// that starts to bite, are not aged but rebuilt: TestAgingTTLs.)
func TestMemoAgesTTLsLikeTheFullPath(t *testing.T) {
	queries := append(slices.Clone(memoQueries),
		query{name: "short-ttl.example.test.", qtype: dns.TypeAAAA},  // 30 s
		query{name: "long-ttl.example.test.", qtype: dns.TypeAAAA},   // capped by the SOA MINIMUM
		query{name: "withextra.example.test.", qtype: dns.TypeAAAA},  // additional section
		query{name: "chain-dual.example.test.", qtype: dns.TypeAAAA}, // CNAME 120 s, AAAA 300 s
	)
	aged := 0
	for _, q := range queries {
		t.Run(q.name+"/"+dns.TypeToString[q.qtype], func(t *testing.T) {
			s := newTestService(t, newTestZone(), nil)
			client := clientOr(q)
			wire := queryWire(t, q, 2)
			fullUDP(s, wire, client) // fill the cache
			start := s.cache.at(s.cache.tick(time.Now()) + 1).Add(400 * time.Millisecond)
			resp, pass := fullUDPAt(s, wire, client, start)
			if pass.missed || resp == nil {
				t.Fatal("not answered from the cache")
			}
			s.remember(wire, client, listenRDNSS, pass, resp)
			var kb [maxMemoKey]byte
			mq, _ := parseMemoQuery(wire)
			e := s.memo.get(mq.key(&kb, wire, pass.dns64), pass.plan, start)
			if e == nil {
				t.Fatal("not remembered")
			}
			if e.aging != nil {
				aged++
			}
			for _, later := range []time.Duration{0, 500 * time.Millisecond, time.Second, 2 * time.Second, 29 * time.Second,
				119 * time.Second, 120 * time.Second, 299 * time.Second, 300 * time.Second, 599 * time.Second, 3599 * time.Second} {
				now := start.Add(later)
				memo, ok := s.answerFromMemo(wire, client, listenRDNSS, make([]byte, 0, serverPayload), now)
				if !ok {
					if e.aging != nil && now.Before(e.until) {
						t.Fatalf("+%v: an aging entry valid until +%v did not answer", later, e.until.Sub(start))
					}
					continue
				}
				full, fp := fullUDPAt(s, wire, client, now)
				if fp.missed {
					t.Fatalf("+%v: the memo answered after the cache expired", later)
				}
				if !bytes.Equal(memo, full) {
					a, b := new(dns.Msg), new(dns.Msg)
					_ = a.Unpack(full)
					_ = b.Unpack(memo)
					t.Fatalf("+%v: memo answer differs (-full +memo):\n%s", later, cmp.Diff(a.String(), b.String()))
				}
			}
		})
	}
	t.Logf("%d of %d age in place", aged, len(queries))
	if aged < len(queries)*3/4 {
		t.Errorf("only %d of %d answers age in place", aged, len(queries))
	}
}

func TestAgingTTLs(t *testing.T) {
	m := new(dns.Msg)
	m.SetQuestion("v4only.example.test.", dns.TypeAAAA)
	m.Answer = []dns.RR{
		mustRR(t, "v4only.example.test. 300 IN AAAA 2001:db8:64::c633:6450"),
		mustRR(t, "v4only.example.test. 600 IN AAAA 2001:db8:64::c633:6451"),
	}
	m.Ns = []dns.RR{mustRR(t, testZoneSOA)}
	m.SetEdns0(1232, false)
	now, _ := m.Pack()
	m.Answer[0].Header().Ttl = 290 // aged 10 ticks
	m.Ns[0].Header().Ttl = 3590
	later, _ := m.Pack()
	aging, ok := agingTTLs(now, later, 10)
	if !ok || len(aging) != 2 || aging[0].ttl != 300 || aging[1].ttl != 3600 {
		t.Fatalf("agingTTLs = %+v, %t; want the first AAAA and the SOA", aging, ok)
	}
	resp := slices.Clone(now)
	(&memoEntry{aging: aging}).age(resp, 10)
	if !bytes.Equal(resp, later) {
		t.Errorf("aged in place: %x, want %x", resp, later)
	}

	m.Answer[1].Header().Ttl = 599 // a cap that started to bite: neither 0 nor 10
	if _, ok := agingTTLs(now, mustPack(t, m), 10); ok {
		t.Error("a TTL that dropped by 1 in 10 ticks taken for aging")
	}
	m.Answer[1].Header().Ttl = 600
	m.Answer[1].(*dns.AAAA).AAAA[15] = 0x52
	if _, ok := agingTTLs(now, mustPack(t, m), 10); ok {
		t.Error("answers with different addresses taken for the same")
	}
	if _, ok := agingTTLs(now, now[:len(now)-1], 10); ok {
		t.Error("answers of different lengths taken for the same")
	}
	for i := range now {
		if _, ok := ttlOffsets(now[:i]); ok {
			t.Fatalf("ttlOffsets accepted a message cut to %d bytes", i)
		}
	}
}

func mustRR(t *testing.T, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

func mustPack(t *testing.T, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseMemoQuery(t *testing.T) {
	plain := queryWire(t, query{name: "www.example.test.", qtype: dns.TypeAAAA}, 7)
	withEDNS := queryWire(t, query{name: "www.example.test.", qtype: dns.TypeAAAA, do: true, size: 4096}, 7)
	mod := func(b []byte, f func([]byte) []byte) []byte { return f(append([]byte(nil), b...)) }
	for _, tc := range []struct {
		name string
		wire []byte
		ok   bool
		want memoQuery
	}{
		{"plain query", plain, true, memoQuery{qtype: dns.TypeAAAA, flags: memoRD, payload: 512, qlen: 22}},
		{"RFC 6891: EDNS payload capped at ours, DO kept", withEDNS, true,
			memoQuery{qtype: dns.TypeAAAA, flags: memoRD | memoDO | memoEDNS, payload: serverPayload, qlen: 22}},
		{"CD bit", mod(plain, func(b []byte) []byte { b[3] |= 0x10; return b }), true,
			memoQuery{qtype: dns.TypeAAAA, flags: memoRD | memoCD, payload: 512, qlen: 22}},
		{"upper case: the answer echoes the question's case", queryWire(t, query{name: "WWW.example.test.", qtype: dns.TypeA}, 7), false, memoQuery{}},
		{"escaped byte in a label", queryWire(t, query{name: `a\.b.example.test.`, qtype: dns.TypeA}, 7), false, memoQuery{}},
		{"a response", mod(plain, func(b []byte) []byte { b[2] |= 0x80; return b }), false, memoQuery{}},
		{"opcode NOTIFY", mod(plain, func(b []byte) []byte { b[2] |= 4 << 3; return b }), false, memoQuery{}},
		{"two questions", mod(plain, func(b []byte) []byte { b[5] = 2; return b }), false, memoQuery{}},
		{"an answer record in the query", mod(plain, func(b []byte) []byte { b[7] = 1; return b }), false, memoQuery{}},
		{"trailing bytes", append(append([]byte(nil), plain...), 0), false, memoQuery{}},
		{"class CH", mod(plain, func(b []byte) []byte { b[len(b)-1] = 3; return b }), false, memoQuery{}},
		{"RFC 6891 6.1.3: EDNS version 1", mod(withEDNS, func(b []byte) []byte { b[len(b)-5] = 1; return b }), false, memoQuery{}},
		{"EDNS options", append(mod(withEDNS, func(b []byte) []byte { b[len(b)-1] = 4; return b }), 0, 10, 0, 0), false, memoQuery{}},
		{"compressed name", mod(plain, func(b []byte) []byte { return append(b[:12], 0xc0, 12, 0, 1, 0, 1) }), false, memoQuery{}},
		{"short", plain[:15], false, memoQuery{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseMemoQuery(tc.wire)
			if ok != tc.ok || ok && got != tc.want {
				t.Errorf("parseMemoQuery = %+v, %t; want %+v, %t", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// A query the memo answers allocates nothing, on its way through the fair
// queue as the UDP reader takes it too: at a steady rate the service then
// never collects garbage (docs/performance.md, "TTLs aged in place, nothing
// allocated per query").
func TestMemoAnswersWithoutAllocating(t *testing.T) {
	for _, name := range []string{"dual.example.test.", "v4only.example.test."} {
		s, wire, buf := benchService(t, name, dns.TypeAAAA)
		now := time.Now()
		pass := &queryPass{cacheOnly: true, now: now}
		resp := s.handleWire(context.Background(), pass, wire, clientOn, listenRDNSS, false, buf)
		if resp == nil || pass.missed {
			t.Fatalf("%s: not answered from the cache", name)
		}
		s.remember(wire, clientOn, listenRDNSS, pass, resp)
		answered := true
		fq := newFairQueue(maxQueued, udpBatch)
		var from unix.RawSockaddrInet6
		allocs := testing.AllocsPerRun(1000, func() {
			j := fq.admit(s.current().fairKey(clientOn.Addr()), clientOn.Addr())
			fq.slot(j).set(wire, clientOn, &from, unix.SizeofSockaddrInet6)
			i, _ := fq.pop()
			sl := fq.slot(i)
			_, ok := s.answerFromMemo(sl.wire, sl.client, listenRDNSS, buf, now)
			answered = answered && ok
			fq.release(i)
		})
		if !answered {
			t.Fatalf("%s: the memo did not answer", name)
		}
		if allocs != 0 {
			t.Errorf("%s: %.1f allocations per query answered from the memo", name, allocs)
		}
	}
}
