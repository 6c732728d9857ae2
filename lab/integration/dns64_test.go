package integration

// DNS64 as the LAN hosts see it (issue 3, "Done when: in the lab"): the
// IPv6-only host resolves through the gizmo's RDNSS address, gets AAAA
// records synthesized in the lab's PREF64 for IPv4-only names (RFC 6147),
// real ones for dual-stack names, never an ::ffff: address, the two
// well-known ipv4only.arpa addresses (RFC 8880), and a plain resolver the
// moment its owner switches DNS64 off.

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/lab/netlab"
	"codeberg.org/monostack/gizmo/services/dns64"
)

// rdnssAddr is the gizmo's resolver address advertised in the RA, once the
// gizmo holds its ULA.
func rdnssAddr(t *testing.T, ctx context.Context, l *netlab.Lab) netip.Addr {
	t.Helper()
	var ula netip.Prefix
	if err := netlab.WaitFor(ctx, "the gizmo's ULA on "+netlab.GizmoLAN, func(context.Context) (bool, error) {
		ula = ulaOf(t, l)
		return ula.IsValid(), nil
	}); err != nil {
		t.Fatal(err)
	}
	return state.DNSAddrsIn(ula, netlab.GizmoLANIPv4).RDNSS
}

// dig asks server from ns and returns the answer lines of dig +short.
func dig(ctx context.Context, l *netlab.Lab, ns string, server netip.Addr, name, qtype string) ([]string, error) {
	out, err := l.Exec(ctx, ns, "dig", "+short", "+time=2", "+tries=2", "@"+server.String(), name, qtype)
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line != "" {
			lines = append(lines, line)
		}
	}
	return lines, nil
}

func synthesized(t *testing.T, v4 string) string {
	t.Helper()
	a, err := dns64.Embed(netlab.Pref64, netip.MustParseAddr(v4))
	if err != nil {
		t.Fatal(err)
	}
	return a.String()
}

// waitAnswer asks until the answer is want (the gizmo may still be
// learning its upstream, or the host's address), and reports the last one.
func waitAnswer(t *testing.T, ctx context.Context, l *netlab.Lab, server netip.Addr, name, qtype string, want []string) {
	t.Helper()
	var got []string
	var lastErr error
	err := netlab.WaitFor(ctx, fmt.Sprintf("%s %s from %s", name, qtype, server), func(context.Context) (bool, error) {
		got, lastErr = dig(ctx, l, netlab.NSLanV6, server, name, qtype)
		return lastErr == nil && slices.Equal(got, want), nil
	})
	if err != nil {
		t.Errorf("%s %s from %s in %s: %v (last error %v); answer (-want +got):\n%s",
			name, qtype, server, netlab.NSLanV6, err, lastErr, cmp.Diff(want, got))
	}
}

func TestDNS64LANHostResolves(t *testing.T) {
	l := LabWithGizmo(t)
	ctx := testContext(t, 2*time.Minute)
	server := rdnssAddr(t, ctx, l)
	v4only := synthesized(t, netlab.V4OnlyServer.String())
	for _, tc := range []struct {
		rule, name, qtype string
		want              []string
	}{
		{"RFC 6147 5.1.6: an IPv4-only name gets an address in the PREF64",
			"v4only.example.test", "AAAA", []string{v4only}},
		{"RFC 6147 5.1.1: a dual-stack name keeps its real AAAA",
			"dual.example.test", "AAAA", []string{"2001:db8:ffff::10"}},
		{"RFC 6147 5.1.4: the ::ffff: AAAA is never returned, the A record is synthesized",
			"mapped.example.test", "AAAA", []string{v4only}},
		{"RFC 6147 5.1.5: the CNAME chain is kept",
			"chain.example.test", "AAAA", []string{"v4only.example.test.", v4only}},
		{"RFC 8880 7.2: ipv4only.arpa gives the two well-known addresses in the PREF64",
			"ipv4only.arpa", "AAAA", []string{synthesized(t, "192.0.0.170"), synthesized(t, "192.0.0.171")}},
		{"RFC 6147 5.1: A queries are answered unchanged",
			"v4only.example.test", "A", []string{netlab.V4OnlyServer.String()}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			waitAnswer(t, ctx, l, server, tc.name, tc.qtype, tc.want)
		})
	}
}

// setDNS64 changes the host's DNS64 policy through the API.
func setDNS64(t *testing.T, ctx context.Context, l *netlab.Lab, mac string, on bool) {
	t.Helper()
	if _, err := l.DashboardAPI(ctx, http.MethodPut, "/api/hosts/"+mac+"/policy", fmt.Sprintf(`{"dns64":%v}`, on)); err != nil {
		t.Fatalf("policy dns64=%v: %v", on, err)
	}
}

func TestDNS64PolicyOffChangesAnswersAtOnce(t *testing.T) {
	l := LabWithGizmo(t)
	ctx := testContext(t, 2*time.Minute)
	server := rdnssAddr(t, ctx, l)
	v4only := synthesized(t, netlab.V4OnlyServer.String())
	// First the gizmo must know the host (its address ↔ MAC): until then
	// it is an unknown client with the default policy, on.
	waitAnswer(t, ctx, l, server, "v4only.example.test", "AAAA", []string{v4only})
	t.Cleanup(func() { setDNS64(t, context.Background(), l, netlab.MACLanV6, true) })

	setDNS64(t, ctx, l, netlab.MACLanV6, false)
	// The host's addresses map to its MAC only once the daemon has seen
	// them, so allow for that; the policy itself applies to the next query.
	waitAnswer(t, ctx, l, server, "v4only.example.test", "AAAA", nil)
	waitAnswer(t, ctx, l, server, "dual.example.test", "AAAA", []string{"2001:db8:ffff::10"})
	waitAnswer(t, ctx, l, server, "ipv4only.arpa", "AAAA", nil)

	setDNS64(t, ctx, l, netlab.MACLanV6, true)
	waitAnswer(t, ctx, l, server, "v4only.example.test", "AAAA", []string{v4only})
}
