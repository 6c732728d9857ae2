package dns64

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"codeberg.org/monostack/gizmo/internal/testrun"
	"codeberg.org/monostack/gizmo/lab/deps"
	"codeberg.org/monostack/gizmo/lab/deps/depstest"
)

// The differential test asks BIND 9 (the reference DNS64; Debian's named)
// and this service the same questions, with the same NAT64 prefix,
// exclusions and upstream: testZone served on loopback. Answers must match
// except for the differences listed in docs/conformance.md, each of
// which is marked on its case below with the RFC section it follows.

// diffCase is one query of the corpus.
type diffCase struct {
	name  string
	qtype uint16
	do    bool
	cd    bool
	edns  bool
	tcp   bool
	// deviation, when set, says why BIND's answer differs from RFC 6147 (or
	// from ours, where the RFC leaves a choice); the test then checks our
	// answer against want instead of against BIND.
	deviation string
	want      func(t *testing.T, ours, upstream *dns.Msg)
	// ttlDeviation: same records, but BIND's TTL differs, for this reason.
	ttlDeviation string
}

func diffCorpus() []diffCase {
	var cs []diffCase
	// Every AAAA rule, each asked without EDNS, with EDNS, with DO, and with
	// DO+CD (RFC 6147 §5.5).
	for _, n := range []string{
		"v4only", "dual", "v6only", "mapped", "excluded", "mixed-excluded",
		"chain", "chain2", "chain-dual", "chain-nx", "host.sub", "nosuch", "multi",
		"short-ttl", "long-ttl", "txt-only", "private", "secure", "UPPER", "nx-aaaa",
	} {
		name := n + ".example.test."
		cs = append(cs,
			diffCase{name: name, qtype: dns.TypeAAAA},
			diffCase{name: name, qtype: dns.TypeAAAA, edns: true},
			diffCase{name: name, qtype: dns.TypeAAAA, edns: true, do: true},
			diffCase{name: name, qtype: dns.TypeAAAA, edns: true, do: true, cd: true},
		)
	}
	for _, n := range []string{"v4only", "dual", "mapped", "chain", "host.sub", "nosuch", "multi"} {
		cs = append(cs, diffCase{name: n + ".example.test.", qtype: dns.TypeA, edns: true})
	}
	cs = append(cs,
		diffCase{name: "mx.example.test.", qtype: dns.TypeMX, edns: true},
		diffCase{name: "txt-only.example.test.", qtype: dns.TypeTXT, edns: true},
		diffCase{name: "80.100.51.198.in-addr.arpa.", qtype: dns.TypePTR, edns: true},
		diffCase{name: "big.example.test.", qtype: dns.TypeAAAA},
		diffCase{name: "big.example.test.", qtype: dns.TypeAAAA, edns: true},
		diffCase{name: "big.example.test.", qtype: dns.TypeAAAA, tcp: true},
		diffCase{name: "big.example.test.", qtype: dns.TypeA, tcp: true},
		diffCase{name: "ipv4only.arpa.", qtype: dns.TypeA, edns: true},
		diffCase{name: "ipv4only.arpa.", qtype: dns.TypeAAAA, edns: true},
		diffCase{name: "0.5.4.6.3.3.6.c.0.0.0.0.0.0.0.0.0.0.0.0.4.6.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", qtype: dns.TypePTR, edns: true},
		diffCase{name: "servfail.example.test.", qtype: dns.TypeAAAA, edns: true},
		diffCase{name: nameServfailAAAA, qtype: dns.TypeAAAA, edns: true},
		diffCase{name: nameRefusedAAAA, qtype: dns.TypeAAAA, edns: true},
		diffCase{name: nameFormerrAAAA, qtype: dns.TypeAAAA, edns: true},
		diffCase{name: nameNoSOA, qtype: dns.TypeAAAA, edns: true},
		diffCase{name: "withextra.example.test.", qtype: dns.TypeAAAA, edns: true},
		diffCase{name: nameTimeoutAAAA, qtype: dns.TypeAAAA, edns: true},
		diffCase{name: nameTimeout, qtype: dns.TypeAAAA, edns: true},
	)
	return cs
}

func (c diffCase) String() string {
	var flags []string
	if c.edns {
		flags = append(flags, "edns")
	}
	if c.do {
		flags = append(flags, "do")
	}
	if c.cd {
		flags = append(flags, "cd")
	}
	if c.tcp {
		flags = append(flags, "tcp")
	}
	return fmt.Sprintf("%s/%s/%s", c.name, dns.TypeToString[c.qtype], strings.Join(flags, "+"))
}

func (c diffCase) exchange(addr string) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(c.name, c.qtype)
	q.CheckingDisabled = c.cd
	if c.edns || c.do {
		q.SetEdns0(1232, c.do)
	}
	cl := &dns.Client{Net: "udp", Timeout: 15 * time.Second}
	if c.tcp {
		cl.Net = "tcp"
	}
	r, _, err := cl.Exchange(q, addr)
	return r, err
}

// summary is the part of an answer that is compared.
type summary struct {
	Rcode     string
	TC, AD    bool
	Answer    []record
	Authority []record
	Extra     []record
}

// record is one RR as text without its TTL, and the TTL.
type record struct {
	Text string
	TTL  uint32
}

func (r record) String() string { return fmt.Sprintf("%s (TTL %d)", r.Text, r.TTL) }

// ttlClose compares records, allowing TTLs one second apart: the two
// resolvers are asked a moment apart and count their caches down by the
// second.
var ttlClose = cmp.Comparer(func(a, b record) bool {
	d := int64(a.TTL) - int64(b.TTL)
	return a.Text == b.Text && d >= -1 && d <= 1
})

func summarize(m *dns.Msg, withTTL bool) summary {
	render := func(rrs []dns.RR) []record {
		var out []record
		for _, rr := range rrs {
			if rr.Header().Rrtype == dns.TypeOPT {
				continue
			}
			rr = dns.Copy(rr)
			ttl := rr.Header().Ttl
			if !withTTL {
				ttl = 0
			}
			rr.Header().Ttl = 0
			out = append(out, record{strings.ReplaceAll(rr.String(), "\t", " "), ttl})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Text < out[j].Text })
		return out
	}
	return summary{
		Rcode: dns.RcodeToString[m.Rcode], TC: m.Truncated, AD: m.AuthenticatedData,
		Answer: render(m.Answer), Authority: render(m.Ns), Extra: render(m.Extra),
	}
}

func freePort(t *testing.T, ip string) int {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp4", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		pc.Close()
		if l, err := net.Listen("tcp4", fmt.Sprintf("%s:%d", ip, port)); err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// startZone serves testZone on loopback over UDP and TCP.
func startZone(t *testing.T, z *testZone, ip string) netip.AddrPort {
	t.Helper()
	port := freePort(t, ip)
	addr := fmt.Sprintf("%s:%d", ip, port)
	for _, network := range []string{"udp", "tcp"} {
		started := make(chan struct{})
		srv := &dns.Server{Addr: addr, Net: network, Handler: z, NotifyStartedFunc: func() { close(started) }}
		go func() { _ = srv.ListenAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return netip.MustParseAddrPort(addr)
}

// startNamed runs BIND 9 as a DNS64 forwarding to upstream.
func startNamed(t *testing.T, upstream netip.AddrPort) string {
	t.Helper()
	// BIND 9 is one of the lab's packages: installed when the test can,
	// else the test skips naming it.
	depstest.Require(t, deps.Lab)
	named, err := exec.LookPath("named")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// named listens only on addresses configured on an interface.
	const ip = "127.0.0.1"
	port := freePort(t, ip)
	conf := fmt.Sprintf(`options {
	directory "%[1]s";
	pid-file none;
	listen-on port %[2]d { %[7]s; };
	listen-on-v6 { none; };
	recursion yes;
	allow-query { any; };
	allow-recursion { any; };
	dnssec-validation no;
	minimal-responses yes;
	// The RFC 6303 empty zones stay on (they carry ipv4only.arpa), except
	// the documentation ranges the test zone and prefix live in.
	disable-empty-zone "100.51.198.IN-ADDR.ARPA";
	disable-empty-zone "8.B.D.0.1.0.0.2.IP6.ARPA";
	qname-minimization off;
	servfail-ttl 0;
	edns-udp-size 1232;
	max-udp-size 1232;
	dns64 %[5]s {
		clients { any; };
		exclude { ::ffff:0:0/96; %[6]s; };
	};
	dns64-server "gizmo.home.arpa.";
	ipv4only-enable yes;
};
controls { };
// Per-zone forwarding rather than global: BIND does not create its built-in
// ipv4only.arpa zone (RFC 8880) under global forwarding.
zone "example.test" { type forward; forward only; forwarders { %[3]s port %[4]d; }; };
zone "100.51.198.in-addr.arpa" { type forward; forward only; forwarders { %[3]s port %[4]d; }; };
`, dir, port, upstream.Addr(), upstream.Port(), testPref64, testExclude, ip)
	confPath := filepath.Join(dir, "named.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd := exec.Command(named, "-g", "-n", "1", "-c", confPath)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start named: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := fmt.Sprintf("%s:%d", ip, port)
	waitServing(t, addr, func() string { return out.String() })
	return addr
}

func waitServing(t *testing.T, addr string, log func() string) {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion("ipv4only.arpa.", dns.TypeA)
	cl := &dns.Client{Timeout: 200 * time.Millisecond}
	for range 200 {
		if _, _, err := cl.Exchange(q, addr); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never answered; log:\n%s", addr, log())
}

// startService runs this package's DNS64 on loopback.
func startService(t *testing.T, upstream netip.AddrPort, ip string) string {
	t.Helper()
	s, err := New(Config{UpstreamTimeout: 800 * time.Millisecond, QueryTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.AddrPortFrom(netip.MustParseAddr(ip), uint16(freePort(t, ip)))
	serve(t, s, Plan{
		Pref64:       testPref64,
		Exclude:      []netip.Prefix{testExclude},
		Upstreams:    []netip.AddrPort{upstream},
		DefaultDNS64: true,
	}, Listener{Addr: ap, Source: SourceRDNSS})
	return ap.String()
}

// serve hands s the plan p with l as its one listener, runs s until the
// test ends, failing the test if Run fails, and returns once s answers on
// l.
func serve(t *testing.T, s *Service, p Plan, l Listener) {
	t.Helper()
	p.Listen = []Listener{l}
	s.Update(p)
	testrun.Start(t, "Run", s.Run)
	waitServing(t, l.Addr.String(), func() string { return "" })
}

// loopbackAddrPort is a free UDP port on a loopback address of the test's
// own, away from 127.0.0.1 where other tests on the machine pick their
// ports.
func loopbackAddrPort(t *testing.T) netip.AddrPort {
	t.Helper()
	ip := fmt.Sprintf("127.53.%d.%d", 1+rand.IntN(254), 1+rand.IntN(254))
	return netip.AddrPortFrom(netip.MustParseAddr(ip), uint16(freePort(t, ip)))
}

func TestDifferentialAgainstBIND(t *testing.T) {
	if testing.Short() {
		t.Skip("short: the differential test waits 10 s for BIND 9 timeouts")
	}
	z := newTestZone()
	// The zone and this service get a loopback address of their own, away
	// from 127.0.0.1 where other tests on the machine pick their ports.
	ip := fmt.Sprintf("127.53.%d.%d", 1+rand.IntN(254), 1+rand.IntN(254))
	upstream := startZone(t, z, ip)
	bind := startNamed(t, upstream)
	ours := startService(t, upstream, ip)

	corpus := diffCorpus()
	deviations := knownDeviations()
	if len(corpus) < 50 {
		t.Fatalf("corpus has %d cases, want at least 50", len(corpus))
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	// Cases that wait for a timeout (BIND 9 gives up after 10 s at the
	// earliest) run beside the rest; the others run in
	// order, so both resolvers see the same sequence of cache states.
	run := func(c diffCase) {
		theirs, err := c.exchange(bind)
		if err != nil {
			mu.Lock()
			t.Errorf("%s: BIND: %v", c, err)
			mu.Unlock()
			return
		}
		mine, err := c.exchange(ours)
		plain := new(dns.Msg) // the upstream's own answer, for deviations
		if err == nil && !strings.HasPrefix(c.name, "timeout") {
			plain, err = c.exchange(upstream.String())
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			t.Errorf("%s: ours: %v", c, err)
			return
		}
		if d, ok := deviations[c.String()]; ok {
			c.deviation, c.want, c.ttlDeviation = d.deviation, d.want, d.ttlDeviation
		}
		if c.deviation != "" {
			if c.want == nil {
				t.Errorf("%s: deviation without a check of our answer", c)
				return
			}
			t.Run(c.String(), func(t *testing.T) { c.want(t, mine, plain) })
			return
		}
		withTTL := c.ttlDeviation == ""
		if theirs.Truncated && mine.Truncated {
			// RFC 2181 §9: a truncated answer only tells the client to
			// retry over TCP; which records fit is of no consequence.
			theirs.Answer, mine.Answer = nil, nil
		}
		if diff := cmp.Diff(summarize(theirs, withTTL), summarize(mine, withTTL), ttlClose); diff != "" {
			t.Errorf("%s: (-BIND +ours):\n%s", c, diff)
		}
	}
	for _, c := range corpus {
		if strings.HasPrefix(c.name, "timeout") {
			wg.Add(1)
			go func() { defer wg.Done(); run(c) }()
			continue
		}
		run(c)
	}
	wg.Wait()
}

// deviation is an intended difference from BIND, with the check that our
// answer follows the RFC instead.
type deviation struct {
	deviation    string
	ttlDeviation string
	want         func(t *testing.T, ours, upstream *dns.Msg)
}

func knownDeviations() map[string]deviation {
	d := map[string]deviation{}
	// RFC 6147 §5.5 (3): with CD=1 and DO=1 the DNS64 "MUST NOT perform
	// synthesis" and returns the data "just like a regular recursive
	// resolver". BIND 9 synthesizes anyway when the answer is unsigned.
	for _, n := range []string{
		"v4only", "mapped", "excluded", "mixed-excluded", "chain", "chain2", "host.sub",
		"multi", "short-ttl", "long-ttl", "private", "secure", "UPPER",
	} {
		c := diffCase{name: n + ".example.test.", qtype: dns.TypeAAAA, edns: true, do: true, cd: true}
		d[c.String()] = deviation{
			deviation: "RFC 6147 5.5 (3): no synthesis with CD=1 DO=1",
			want: func(t *testing.T, ours, upstream *dns.Msg) {
				if diff := cmp.Diff(summarize(upstream, false).Answer, summarize(ours, false).Answer, ttlClose); diff != "" {
					t.Errorf("answer differs from the upstream's (-upstream +ours):\n%s", diff)
				}
				if ours.Rcode != upstream.Rcode {
					t.Errorf("rcode %s, upstream %s", dns.RcodeToString[ours.Rcode], dns.RcodeToString[upstream.Rcode])
				}
			},
		}
	}
	// RFC 6147 §5.1.2: "any other RCODE is treated as though the RCODE were
	// 0 and the answer section were empty", and §5.1.3 the same for a
	// timeout. BIND 9 returns SERVFAIL.
	for name, a := range map[string]string{
		nameServfailAAAA: "198.51.100.88",
		nameRefusedAAAA:  "198.51.100.89",
		nameFormerrAAAA:  "198.51.100.91",
		nameTimeoutAAAA:  "198.51.100.92",
	} {
		c := diffCase{name: name, qtype: dns.TypeAAAA, edns: true}
		d[c.String()] = deviation{
			deviation: "RFC 6147 5.1.2/5.1.3: a failed AAAA lookup counts as empty",
			want: func(t *testing.T, ours, _ *dns.Msg) {
				v6, _ := Embed(testPref64, netip.MustParseAddr(a))
				want := []record{{fmt.Sprintf("%s 0 IN AAAA %s", name, v6), 300}}
				if diff := cmp.Diff(want, summarize(ours, true).Answer, ttlClose); ours.Rcode != dns.RcodeSuccess || diff != "" {
					t.Errorf("rcode %s, answer (-want +ours):\n%s", dns.RcodeToString[ours.Rcode], diff)
				}
			},
		}
	}
	// RFC 6147 §5.3.2: the additional section of the A answer passes
	// through. BIND 9 builds its own additional section as a recursive
	// server (here: none, minimal-responses).
	c := diffCase{name: "withextra.example.test.", qtype: dns.TypeAAAA, edns: true}
	d[c.String()] = deviation{
		deviation: "RFC 6147 5.3.2: additional section passes through",
		want: func(t *testing.T, ours, _ *dns.Msg) {
			want := summary{
				Rcode:  "NOERROR",
				Answer: []record{{"withextra.example.test. 0 IN AAAA 2001:db8:64::c633:6457", 300}},
				Extra:  []record{{"ns.example.test. 0 IN A 192.0.2.53", 3600}},
			}
			if diff := cmp.Diff(want, summarize(ours, true), ttlClose); diff != "" {
				t.Errorf("(-want +ours):\n%s", diff)
			}
		},
	}
	return d
}
