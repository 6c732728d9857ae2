package dns64

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

func TestInZone(t *testing.T) {
	for _, tc := range []struct {
		zone, name string
		want       bool
	}{
		{"home.arpa.", "home.arpa.", true},
		{"home.arpa.", "laptop.home.arpa.", true},
		{"home.arpa.", "myhome.arpa.", false},
		{"home.arpa.", "arpa.", false},
		{"ipv4only.arpa.", "x.ipv4only.arpa.", true},
		{".", "example.", true},
	} {
		if got := inZone(tc.zone, tc.name); got != tc.want {
			t.Errorf("inZone(%q, %q) = %v, want %v", tc.zone, tc.name, got, tc.want)
		}
	}
}

// RFC 6147 5.1.7: a local name's synthesized AAAA counts as synthesis,
// for the dashboard's "needs IPv4 for" of the host that asked.
func TestLocalSynthesizedAnswerIsCounted(t *testing.T) {
	s := newTestService(t, newTestZone(), nil)
	if m := ask(t, s, query{name: "gadget.home.arpa.", qtype: dns.TypeAAAA}); len(m.Answer) != 1 {
		t.Fatalf("answer %v", m.Answer)
	}
	ask(t, s, query{name: "laptop.home.arpa.", qtype: dns.TypeAAAA})
	if got := s.Stats().Synthesized; got != 1 {
		t.Errorf("synthesized = %d, want 1 (the gadget's, not the laptop's own AAAA)", got)
	}
}

func TestPlanRefusesBadLocalSynthesized(t *testing.T) {
	for name, synth := range map[string]map[string][]netip.Addr{
		"outside the local domain": {"printer.example.": {netip.MustParseAddr("2001:db8:64::cb00:7182")}},
		"an IPv4 address":          {"printer.home.arpa.": {netip.MustParseAddr("203.0.113.130")}},
		"an IPv4-mapped address":   {"printer.home.arpa.": {netip.MustParseAddr("::ffff:203.0.113.130")}},
	} {
		p := testPlan()
		p.LocalSynthesized = synth
		if p.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
