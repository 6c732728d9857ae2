package firewall

import (
	"fmt"

	"net/netip"
	"strings"
	"testing"

	"github.com/google/nftables"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*Plan)
		wantErr string // substring; empty means valid
	}{
		{"the lab plan is valid", func(*Plan) {}, ""},
		{"port 0 refused", func(p *Plan) { p.TokenRules[0].Ports = []Port{{TCP, 0}} }, "number must be 1-65535"},
		{"protocol other than tcp/udp refused", func(p *Plan) { p.HostRules[0].Ports = []Port{{Proto: 1, Port: 5}} }, "protocol must be tcp or udp"},
		{"token rule without ports refused", func(p *Plan) { p.TokenRules[0].Ports = nil }, "no ports"},
		{"RFC 4291 2.5.1: token longer than 64 bits refused", func(p *Plan) { p.TokenRules[0].Token = a("::1:0:0:0:80") }, "longer than 64 bits"},
		{"RFC 4291 2.6.1: all-zero token refused", func(p *Plan) { p.TokenRules[0].Token = a("::") }, "subnet-router anycast"},
		{"IPv4 token refused", func(p *Plan) { p.TokenRules[0].Token = a("192.0.2.80") }, "interface identifier"},
		{"prefix rule outside the delegation refused", func(p *Plan) { p.PrefixRules = []netip.Prefix{q("2001:db8:2000::/64")} }, "outside the delegated prefix"},
		{"prefix rule wider than the delegation refused", func(p *Plan) { p.PrefixRules = []netip.Prefix{q("2001:db8:1000::/48")} }, "outside the delegated prefix"},
		{"prefix rule without a delegation refused", func(p *Plan) { p.Delegated = netip.Prefix{} }, "outside the delegated prefix"},
		{"non-canonical prefix rule refused", func(p *Plan) { p.PrefixRules = []netip.Prefix{q("2001:db8:1000:110::1/64")} }, "canonical"},
		{"host rule with an IPv4 address refused", func(p *Plan) { p.HostRules[0].Addrs = []netip.Addr{a("203.0.113.140")} }, "global IPv6"},
		{"missing WAN interface refused", func(p *Plan) { p.WAN = "" }, "WAN interface"},
		{"overlong interface name refused", func(p *Plan) { p.LAN = []string{"a-very-long-ifname"} }, "LAN interface"},
		{"no LAN refused", func(p *Plan) { p.LAN = nil }, "no LAN"},
		{"WAN also LAN refused", func(p *Plan) { p.LAN = []string{"uplink0"} }, "both WAN and LAN"},
		{"IPv4 legacy pool as IPv6 refused", func(p *Plan) { p.Legacy4 = q("2001:db8::/64") }, "legacy pool"},
		{"IPv4 LAN prefix refused", func(p *Plan) { p.LANPrefixes = append(p.LANPrefixes, q("203.0.113.0/24")) }, "LAN prefix"},
		{"RFC 7421: LAN prefix other than /64 refused", func(p *Plan) { p.LANPrefixes = append(p.LANPrefixes, q("2001:db8:1000:1f0::/60")) }, "must be a /64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := labPlan()
			tc.edit(&p)
			err := Validate(p)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("Validate accepted the plan, want error containing %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("Validate: %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestParsePort(t *testing.T) {
	for in, want := range map[string]Port{"tcp/443": {TCP, 443}, "UDP/53": {UDP, 53}, "tcp/65535": {TCP, 65535}} {
		got, err := ParsePort(in)
		if err != nil || got != want {
			t.Errorf("ParsePort(%q) = %v, %v; want %v", in, got, err, want)
		}
		if back, err := ParsePort(got.String()); err != nil || back != got {
			t.Errorf("ParsePort(%q.String()) = %v, %v", in, back, err)
		}
	}
	for _, in := range []string{"", "443", "tcp/", "tcp/0", "tcp/65536", "icmp/1", "tcp/-1", "tcp/4 43", "sctp/80"} {
		if p, err := ParsePort(in); err == nil {
			t.Errorf("ParsePort(%q) = %v, want an error", in, p)
		}
	}
}

func TestParseToken(t *testing.T) {
	if tok, err := ParseToken("::80"); err != nil || tok != a("::80") {
		t.Errorf("ParseToken(::80) = %v, %v", tok, err)
	}
	if _, err := ParseToken("::1:2:3:4"); err != nil {
		t.Errorf("ParseToken(::1:2:3:4): %v", err)
	}
	for _, in := range []string{"", "::", "80", "2001:db8::80", "::1:0:0:0:0", "fe80::80%lan0", "::ffff:192.0.2.1"} {
		if tok, err := ParseToken(in); err == nil {
			t.Errorf("ParseToken(%q) = %v, want an error", in, tok)
		}
	}
}

// FuzzParsePort: whatever the API receives, the parser returns a port that
// renders and validates, or an error; it never panics.
func FuzzParsePort(f *testing.F) {
	for _, s := range []string{"tcp/443", "udp/53", "tcp/0", "x/1", "/", "tcp/99999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if p, err := ParsePort(s); err == nil {
			planWithTokenRule(t, s, p, TokenRule{Token: a("::80"), Ports: []Port{p}})
		}
	})
}

// FuzzParseToken: an accepted token validates, and compiles into the
// ruleset without error.
func FuzzParseToken(f *testing.F) {
	for _, s := range []string{"::80", "::", "::1:0:0:0:1", "1.2.3.4", "::ffff:1.2.3.4", "fe80::1%eth0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err != nil {
			return
		}
		plan := planWithTokenRule(t, s, tok, TokenRule{Token: tok, Ports: []Port{{TCP, 443}}})
		if err := compileAll(Render(plan)); err != nil {
			t.Fatal(err)
		}
	})
}

// planWithTokenRule is the lab's plan with r as its token rule, built
// from what a parser accepted (in, parsed as v). The fuzz run fails when
// Validate refuses the plan: whatever a parser accepts must make a valid
// rule.
func planWithTokenRule(t *testing.T, in string, v any, r TokenRule) Plan {
	t.Helper()
	plan := labPlan()
	plan.TokenRules = []TokenRule{r}
	if err := Validate(plan); err != nil {
		t.Fatalf("%q parsed as %v, which Validate refuses: %v", in, v, err)
	}
	return plan
}

// compileAll turns every set and rule into kernel objects without sending
// them anywhere.
func compileAll(rs Ruleset) error {
	sets := map[string]*nftables.Set{}
	for _, set := range rs.Sets {
		ns, _, err := set.nft(nil)
		if err != nil {
			return err
		}
		sets[set.Name] = ns
	}
	for _, c := range rs.Chains {
		for _, r := range c.Rules {
			if _, err := r.exprs(sets); err != nil {
				return fmt.Errorf("chain %s: %q: %w", c.Name, r, err)
			}
		}
	}
	return nil
}

func TestCompileLabPlan(t *testing.T) {
	p := labPlan()
	p.NAT64Mark = 0x64
	if err := compileAll(Render(p)); err != nil {
		t.Fatal(err)
	}
}
