package zeroconf

// Issue 9, variation 6: "short lifetimes, RECONFIGURE, lost Renew replies,
// a PD that disappears", against the real peers: Kea as the ISP's DHCPv6-PD
// server in gz-isp, the gizmo daemon, and a kernel SLAAC host (gz-lan-v6).
// Short lifetimes alone are TestShortLifetimes (zeroconf_test.go).

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/lab/netlab"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"golang.org/x/net/ipv6"
)

// upLab is upScenario with the lab options a test sets itself (the DHCP
// lifetimes); it takes the lab down when the test ends.
func upLab(t *testing.T, opts netlab.Options) *netlab.Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute) // the lab lock may be held by other test packages
	defer cancel()
	opts.GizmoBinary = filepath.Join(binDir, "gizmo")
	opts.HelperBinary = filepath.Join(binDir, "lab")
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	l, err := netlab.Up(ctx, opts)
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := l.GizmoLog(); err == nil {
				t.Logf("gizmo log (last 80 lines):\n%s", lastLines(string(b), 80))
			}
			if b, err := os.ReadFile(l.LogPath("kea6")); err == nil {
				t.Logf("kea6 log (last 30 lines):\n%s", lastLines(string(b), 30))
			}
		}
		if err := l.Down(); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	return l
}

// pdCounter reads one of the DHCPv6-PD client's counters (dhcp6pd.Stats)
// from the gizmo's /metrics, e.g. "renews" for gizmo_dhcp6pd_renews_total.
func pdCounter(ctx context.Context, name string) (float64, error) {
	body, err := netlab.HTTPGet(ctx, netlab.NSGizmo, "http://[::1]/metrics")
	if err != nil {
		return 0, err
	}
	metric := "gizmo_dhcp6pd_" + name + "_total "
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, metric); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("no %s in /metrics", strings.TrimSpace(metric))
}

// pdCounters reads several counters at once.
func pdCounters(t *testing.T, ctx context.Context, names ...string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, n := range names {
		v, err := pdCounter(ctx, n)
		if err != nil {
			t.Fatalf("/metrics: %v", err)
		}
		out[n] = v
	}
	return out
}

// since returns how much each counter grew from before.
func since(t *testing.T, ctx context.Context, before map[string]float64, names ...string) map[string]float64 {
	t.Helper()
	now := pdCounters(t, ctx, names...)
	for n, v := range now {
		now[n] = v - before[n]
	}
	return now
}

// waitPDCounter waits until the counter exceeds after and returns it. check,
// if not nil, runs at every poll so that a test can assert an invariant for
// the whole wait.
func waitPDCounter(t *testing.T, ctx context.Context, name string, after float64, check func()) float64 {
	t.Helper()
	var v float64
	err := netlab.WaitFor(ctx, fmt.Sprintf("gizmo_dhcp6pd_%s_total > %v", name, after), func(ctx context.Context) (bool, error) {
		if check != nil {
			check()
		}
		var err error
		if v, err = pdCounter(ctx, name); err != nil {
			return false, nil
		}
		return v > after, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// shortly bounds a wait that should end within seconds, so that a wrong
// expectation fails alone instead of using up the whole test's time.
func shortly(t *testing.T, ctx context.Context) context.Context {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// lifetimeStatus is the part of GET /api/status with the lifetimes.
type lifetimeStatus struct {
	Delegated *prefixJSON  `json:"delegated_prefix"`
	Retired   []prefixJSON `json:"retired_prefixes"`
}

type prefixJSON struct {
	Prefix           string `json:"prefix"`
	PreferredSeconds int64  `json:"preferred_seconds"`
	ValidSeconds     int64  `json:"valid_seconds"`
}

// hostAddrIn returns the LAN host's address inside p, if it has one.
func hostAddrIn(ctx context.Context, p netip.Prefix) (netlab.Addr, bool, error) {
	addrs, err := netlab.Addrs(ctx, netlab.NSLanV6, netlab.HostIf)
	if err != nil {
		return netlab.Addr{}, false, err
	}
	for _, a := range addrs {
		if p.Contains(a.Prefix.Addr()) {
			return a, true, nil
		}
	}
	return netlab.Addr{}, false, nil
}

// delegation waits for the first delegation and the host's SLAAC address in
// its LAN /64; it returns the prefix, that /64 and the ULA /64.
func delegation(t *testing.T, ctx context.Context, l *netlab.Lab) (prefix, lan64, ula64 netip.Prefix) {
	t.Helper()
	st := waitStatus(t, ctx, "a delegation", func(s status) bool { return s.Delegated != nil && s.ULA != "" })
	prefix, err := netip.ParsePrefix(st.Delegated.Prefix)
	if err != nil {
		t.Fatalf("delegated prefix %q: %v", st.Delegated.Prefix, err)
	}
	ula, err := netip.ParsePrefix(st.ULA)
	if err != nil {
		t.Fatalf("ULA %q: %v", st.ULA, err)
	}
	lan64 = netip.PrefixFrom(prefix.Addr(), 64)
	ula64 = netip.PrefixFrom(ula.Addr(), 64)
	checkServedV6(t, ctx, l, prefix)
	return prefix, lan64, ula64
}

// lostReplyLifetimes: T1 10 s, T2 16 s, preferred 32 s, valid 40 s. A
// Rebind sent at T2 is retransmitted after REB_TIMEOUT (10 s ± 10 %,
// RFC 8415 §7.6, §15), before the preferred lifetime ends, so that a
// recovered lease never even deprecates the LAN's addresses.
var lostReplyLifetimes = netlab.Lifetimes{Renew: 10 * time.Second, Rebind: 16 * time.Second, Preferred: 32 * time.Second, Valid: 40 * time.Second}

// TestLostRenewReplies: the ISP's DHCPv6 replies are lost on the way to the
// gizmo (Kea still hears and extends the lease; nftables in gz-isp drops
// what it sends back).
//
// While the lease is valid (RFC 8415 §18.2.4, §18.2.5): the gizmo keeps the
// prefix, retransmits Renew until T2 and then Rebinds; once the replies come
// back the lease is extended, and the LAN host never loses its address.
//
// Past the valid lifetime (RFC 8415 §18.2.5 "until the valid lifetimes of
// all leases have expired", §18.2.10.1): the prefix is gone. The status
// shows no delegation, the deployment falls back to "shared-64" (the WAN's
// /64 shared through the ND proxy), the host's address in the delegation
// has expired with it (the RA only ever granted what was left of the lease,
// RFC 9096 §3.4), the ULA stays; when Kea is heard again the gizmo solicits
// and gets the same prefix back.
func TestLostRenewReplies(t *testing.T) {
	l := upLab(t, netlab.Options{Lifetimes: lostReplyLifetimes})
	ctx := testContext(t, 4*time.Minute)
	prefix, lan64, ula64 := delegation(t, ctx, l)

	// Start right after a Reply, with the whole lease ahead.
	c := pdCounters(t, ctx, "leases")
	waitPDCounter(t, ctx, "leases", c["leases"], nil)
	if err := l.DropDHCPv6Replies(ctx, true); err != nil {
		t.Fatal(err)
	}
	c = pdCounters(t, ctx, "renews", "rebinds", "leases", "lost")

	// keeps checks, at every poll, that the prefix is still delegated and
	// the host still has a preferred address in it.
	keeps := func(when string) func() {
		return func() {
			var s lifetimeStatus
			if err := apiJSON(ctx, "/api/status", &s); err == nil && (s.Delegated == nil || s.Delegated.Prefix != prefix.String()) {
				t.Fatalf("%s: the gizmo gave up %s: status %+v", when, prefix, s.Delegated)
			}
			a, ok, err := hostAddrIn(ctx, lan64)
			if err == nil && (!ok || a.Deprecated) {
				t.Fatalf("%s: gz-lan-v6 lost its preferred address in %s (found %v, %+v)", when, lan64, ok, a)
			}
		}
	}
	// §18.2.4: Renew from T1, retransmitted until T2; §18.2.5: then Rebind.
	waitPDCounter(t, ctx, "rebinds", c["rebinds"], keeps("renewing"))
	after := pdCounters(t, ctx, "renews", "leases")
	if after["renews"] <= c["renews"] {
		t.Errorf("the gizmo rebinds without having renewed first (renews %v → %v)", c["renews"], after["renews"])
	}
	if after["leases"] != c["leases"] {
		t.Fatalf("a Reply got through the filter: leases %v → %v", c["leases"], after["leases"])
	}
	if n, err := l.DroppedDHCPv6Replies(ctx); err != nil || n == 0 {
		t.Errorf("the ISP's filter dropped %d replies (%v); want some", n, err)
	}

	// Kea answers again: the next Rebind is answered and the lease runs on.
	if err := l.DropDHCPv6Replies(ctx, false); err != nil {
		t.Fatal(err)
	}
	waitPDCounter(t, ctx, "leases", c["leases"], keeps("rebinding"))
	// The counter moves as the Reply is accepted; the daemon's state, and
	// so the status, a moment later.
	var s lifetimeStatus
	err := netlab.WaitFor(shortly(t, ctx), "the extended lease in the status", func(ctx context.Context) (bool, error) {
		if err := apiJSON(ctx, "/api/status", &s); err != nil {
			return false, nil
		}
		return s.Delegated != nil && s.Delegated.Prefix == prefix.String() &&
			s.Delegated.ValidSeconds >= int64(lostReplyLifetimes.Valid/time.Second)-5, nil
	})
	if err != nil {
		t.Errorf("after the Rebind: status %+v, want %s valid for about %v again: %v", s.Delegated, prefix, lostReplyLifetimes.Valid, err)
	}
	if n := pdCounters(t, ctx, "lost")["lost"]; n != c["lost"] {
		t.Errorf("the gizmo counted %v lost prefixes during a Renew outage it survived", n-c["lost"])
	}

	t.Run("past the valid lifetime", func(t *testing.T) {
		c := pdCounters(t, ctx, "leases")
		waitPDCounter(t, ctx, "leases", c["leases"], nil)
		if err := l.DropDHCPv6Replies(ctx, true); err != nil {
			t.Fatal(err)
		}
		c = pdCounters(t, ctx, "lost", "solicits", "leases")
		waitStatus(t, ctx, "the delegation to end with its valid lifetime", func(s status) bool { return s.Delegated == nil })
		if n := pdCounters(t, ctx, "lost")["lost"]; n != c["lost"]+1 {
			t.Errorf("lost prefixes %v → %v, want one more", c["lost"], n)
		}
		waitDeployment(t, shortly(t, ctx), l, "shared-64")
		// The host's address in the prefix expires with the lease; only
		// the ULA is left.
		err := netlab.WaitFor(ctx, "gz-lan-v6's address in "+lan64.String()+" to expire", func(ctx context.Context) (bool, error) {
			_, ok, err := hostAddrIn(ctx, lan64)
			return err == nil && !ok, nil
		})
		if err != nil {
			t.Error(err)
		}
		if _, err := netlab.WaitAddr(ctx, netlab.NSLanV6, netlab.HostIf, ula64); err != nil {
			t.Errorf("gz-lan-v6 lost its ULA address too: %v", err)
		}
		// §18.2.5 → §18.2.1: it solicits again; Kea, which kept the
		// binding alive from the Rebinds it heard, offers the same prefix.
		waitPDCounter(t, ctx, "solicits", c["solicits"], nil)
		if err := l.DropDHCPv6Replies(ctx, false); err != nil {
			t.Fatal(err)
		}
		st := waitStatus(t, ctx, "the delegation back", func(s status) bool { return s.Delegated != nil })
		if st.Delegated.Prefix != prefix.String() {
			t.Errorf("delegated %s after the outage, want %s back (Kea kept the binding)", st.Delegated.Prefix, prefix)
		}
		waitDeployment(t, shortly(t, ctx), l, "router")
		if _, err := netlab.WaitAddr(ctx, netlab.NSLanV6, netlab.HostIf, lan64); err != nil {
			t.Errorf("gz-lan-v6 has no address in %s again: %v", lan64, err)
		}
	})
}

// disappearLifetimes: T1 4 s, T2 6 s, preferred 10 s, valid 12 s, so that a
// delegation that stops being renewed ends within a test's patience.
var disappearLifetimes = netlab.Lifetimes{Renew: 4 * time.Second, Rebind: 6 * time.Second, Preferred: 10 * time.Second, Valid: 12 * time.Second}

// TestDelegationDisappears: the ISP forgets every binding and stops
// delegating, in the two ways Kea 2.2 can (netlab.SetDelegation):
//
//   - no-pool: Kea still serves the link but has no prefix left. It answers
//     the gizmo's Renew (for a binding it no longer has) by trying to
//     allocate, which RFC 8415 §18.3.4 allows, and says NoPrefixAvail. The
//     gizmo keeps the prefix until its lifetimes end, renewing and
//     rebinding (§18.2.10.1 gives NoPrefixAvail to Renew no other meaning).
//   - unknown-link: Kea has no subnet for the link any more, so the Renew
//     gets NoBinding (§18.3.4), and the gizmo sends a Request for the same
//     prefix (§18.2.10.1); that gets no prefix either.
//
// Either way the delegation ends with its valid lifetime: the LAN loses the
// prefix then (the RA never granted more, RFC 9096 §3.4), nothing is left
// being phased out, the deployment falls back to "shared-64" (the WAN's
// /64 shared through the ND proxy), and the LAN keeps its ULA, DNS64 and
// NAT64. When Kea delegates again the gizmo gets a prefix
// back without a restart.
func TestDelegationDisappears(t *testing.T) {
	l := upLab(t, netlab.Options{Lifetimes: disappearLifetimes})
	ctx := testContext(t, 4*time.Minute)
	_, _, ula64 := delegation(t, ctx, l)
	for _, tc := range []struct {
		mode netlab.ISPDelegation
		// answer is the counter of the status the gizmo's Renew gets.
		answer string
	}{
		{netlab.DelegationNoPool, "no_prefix_avail"},
		{netlab.DelegationUnknownLink, "no_binding"},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			st := waitStatus(t, ctx, "a delegation", func(s status) bool { return s.Delegated != nil })
			prefix, err := netip.ParsePrefix(st.Delegated.Prefix)
			if err != nil {
				t.Fatal(err)
			}
			lan64 := netip.PrefixFrom(prefix.Addr(), 64)
			c := pdCounters(t, ctx, "no_prefix_avail", "no_binding", "renews", "rebinds", "requests", "solicits", "lost")
			if err := l.SetDelegation(ctx, tc.mode); err != nil {
				t.Fatal(err)
			}
			waitPDCounter(t, ctx, tc.answer, c[tc.answer], nil)
			if tc.answer == "no_binding" {
				// §18.2.10.1: NoBinding to Renew → Request.
				waitPDCounter(t, ctx, "requests", c["requests"], nil)
			}
			st = waitStatus(t, ctx, "no delegation", func(s status) bool { return s.Delegated == nil })
			t.Logf("%s: delegation over; counters since the ISP changed: %v", tc.mode, since(t, ctx, c, "no_prefix_avail", "no_binding", "renews", "rebinds", "requests", "solicits", "lost"))
			if n := pdCounters(t, ctx, "lost")["lost"]; n != c["lost"]+1 {
				t.Errorf("lost prefixes %v → %v, want one more", c["lost"], n)
			}
			waitDeployment(t, shortly(t, ctx), l, "shared-64")
			err = netlab.WaitFor(ctx, "gz-lan-v6's address in "+lan64.String()+" to expire", func(ctx context.Context) (bool, error) {
				_, ok, err := hostAddrIn(ctx, lan64)
				return err == nil && !ok, nil
			})
			if err != nil {
				t.Error(err)
			}
			var ls lifetimeStatus
			if err := apiJSON(ctx, "/api/status", &ls); err != nil {
				t.Fatal(err)
			}
			for _, r := range ls.Retired {
				if r.Prefix == prefix.String() && r.ValidSeconds > 0 {
					t.Errorf("the expired prefix is still being phased out: %+v", r)
				}
			}
			// The LAN still reaches IPv4 through DNS64 + NAT64 from its ULA.
			ulaAddr, err := netlab.WaitAddr(ctx, netlab.NSLanV6, netlab.HostIf, ula64)
			if err != nil {
				t.Fatalf("gz-lan-v6 has no ULA address: %v", err)
			}
			body, err := fetchFrom(shortly(t, ctx), l, ulaAddr, rdnss(t, st), "v4only.example.test")
			if err != nil {
				t.Errorf("gz-lan-v6 fetching v4only through DNS64 + NAT64 from %s without a delegation: %v", ulaAddr, err)
			} else if !strings.Contains(body, "server="+netlab.V4OnlyServer.String()) {
				t.Errorf("v4only answered %q", body)
			}

			// And from its address in the WAN's /64, which the gizmo now
			// shares: the NAT64's replies to it must find the way to the LAN
			// although the lab's hosts skip DAD and never spoke ND upstream
			// (services/ndproxy resolves it on the LAN, 4bf64c4).
			shared, err := netlab.WaitAddr(ctx, netlab.NSLanV6, netlab.HostIf, netlab.WANPrefix6)
			if err != nil {
				t.Fatalf("gz-lan-v6 has no address in the shared /64 %s: %v", netlab.WANPrefix6, err)
			}
			if _, err := fetchFrom(shortly(t, ctx), l, shared, rdnss(t, st), "v4only.example.test"); err != nil {
				t.Errorf("NAT64 from the shared /64 address %s: %v", shared, err)
			}

			// Kea delegates again. Restore it before the gizmo's Solicit
			// backoff (RFC 8415 §15, up to SOL_MAX_RT, an hour) has grown:
			// it answers the next Solicit.
			if err := l.SetDelegation(ctx, netlab.DelegationOn); err != nil {
				t.Fatal(err)
			}
			back := waitStatus(t, ctx, "a delegation again", func(s status) bool { return s.Delegated != nil })
			p, err := netip.ParsePrefix(back.Delegated.Prefix)
			if err != nil || !l.PDPool().Contains(p.Addr()) {
				t.Fatalf("delegated %q, want a prefix from %s", back.Delegated.Prefix, l.PDPool())
			}
			waitDeployment(t, shortly(t, ctx), l, "router")
			checkServedV6(t, ctx, l, p)
		})
	}
}

// TestUnauthenticatedReconfigureIsDropped: a Reconfigure (RFC 8415 §18.3.11)
// sent from the ISP's router to the gizmo's client port, with the right
// server and client identifiers but without a valid reconfigure key
// authentication (§20.4), is dropped and counted, and the lease stays as it
// was: accepting it would let anyone on the WAN link make the gizmo drop or
// move its prefix.
//
// Only the unauthenticated path can be tested against the real ISP: Kea
// (2.2 in the lab) never sends Reconfigure and never hands out a
// reconfigure key, even though the gizmo sends Reconfigure Accept. The
// accepted path (key from the Reply, HMAC-MD5 digest, replay detection)
// is covered by the unit tests in services/dhcp6pd/machine_test.go.
func TestUnauthenticatedReconfigureIsDropped(t *testing.T) {
	l := upLab(t, netlab.Options{})
	ctx := testContext(t, 2*time.Minute)
	prefix, _, _ := delegation(t, ctx, l)

	lease, ok := l.PDLease()
	if !ok || lease.Prefix != prefix {
		t.Fatalf("the gizmo's stored lease %+v, want %s", lease, prefix)
	}
	serverID, err := dhcpv6.DUIDFromBytes(lease.ServerID)
	if err != nil {
		t.Fatalf("server DUID in the stored lease: %v", err)
	}
	clientID := readClientDUID(t, l)

	// Right after a Reply the client is bound until T1 (20 s), the state
	// in which §18.2.11 would act on a Reconfigure.
	c := pdCounters(t, ctx, "leases")
	waitPDCounter(t, ctx, "leases", c["leases"], nil)
	c = pdCounters(t, ctx, "reconfigure_dropped", "reconfigure_accepted", "renews", "rebinds", "leases")

	forged := map[string][]byte{
		"no authentication option":  reconfigure(t, serverID, clientID, nil),
		"a made-up HMAC-MD5 digest": reconfigure(t, serverID, clientID, fakeReconfigureAuth(t)),
	}
	for what, b := range forged {
		if err := sendFromISPServer(b); err != nil {
			t.Fatalf("sending a Reconfigure with %s: %v", what, err)
		}
	}
	err = netlab.WaitFor(ctx, "both Reconfigures counted as dropped", func(ctx context.Context) (bool, error) {
		v, err := pdCounter(ctx, "reconfigure_dropped")
		return err == nil && v >= c["reconfigure_dropped"]+float64(len(forged)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	now := pdCounters(t, ctx, "reconfigure_dropped", "reconfigure_accepted", "renews", "rebinds", "leases")
	if now["reconfigure_dropped"] != c["reconfigure_dropped"]+float64(len(forged)) {
		t.Errorf("dropped Reconfigures %v → %v, want +%d", c["reconfigure_dropped"], now["reconfigure_dropped"], len(forged))
	}
	for _, n := range []string{"reconfigure_accepted", "renews", "rebinds", "leases"} {
		if now[n] != c[n] {
			t.Errorf("%s changed %v → %v: the gizmo acted on a forged Reconfigure", n, c[n], now[n])
		}
	}
	// The drop reason is the missing key, so the messages got as far as
	// the authentication check (right server, bound client).
	b, err := l.GizmoLog()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), `reason="no reconfigure key from the server"`); n < len(forged) {
		t.Errorf("the gizmo logged %d Reconfigure drops for the missing key, want %d", n, len(forged))
	}
	var s lifetimeStatus
	if err := apiJSON(ctx, "/api/status", &s); err != nil || s.Delegated == nil || s.Delegated.Prefix != prefix.String() {
		t.Errorf("status after the Reconfigures: %+v (%v), want %s", s.Delegated, err, prefix)
	}
}

// sendFromISPServer sends a DHCPv6 message as the ISP's server would: from
// gz-isp's link-local address on the WAN link and UDP port 547 to the
// gizmo's link-local address and client port 546 (RFC 8415 §7.2), the only
// way the gizmo's WAN firewall lets DHCPv6 in. Kea holds port 547 on that
// address, so the datagram goes out through a raw socket with the kernel
// computing the UDP checksum (IPV6_CHECKSUM, RFC 3542 §3.1).
func sendFromISPServer(msg []byte) error {
	var conn net.PacketConn
	err := netlab.InNamespace(netlab.NSISP, func() error {
		var err error
		conn, err = net.ListenPacket("ip6:udp", netlab.ISPWANLinkLocal.String()+"%"+netlab.ISPWAN)
		return err
	})
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := ipv6.NewPacketConn(conn).SetChecksum(true, 6); err != nil {
		return fmt.Errorf("IPV6_CHECKSUM: %w", err)
	}
	udp := make([]byte, 8, 8+len(msg))
	binary.BigEndian.PutUint16(udp[0:], dhcpv6.DefaultServerPort)
	binary.BigEndian.PutUint16(udp[2:], dhcpv6.DefaultClientPort)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(msg)))
	udp = append(udp, msg...)
	dst := &net.IPAddr{IP: net.IP(netlab.GizmoWANLinkLocal.AsSlice()), Zone: netlab.ISPWAN}
	_, err = conn.WriteTo(udp, dst)
	return err
}

// readClientDUID reads the gizmo's DHCPv6 DUID from its state dir.
func readClientDUID(t *testing.T, l *netlab.Lab) dhcpv6.DUID {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(l.GizmoStateDir(), "dhcp6pd", "dhcp6pd-duid.json"))
	if err != nil {
		t.Fatal(err)
	}
	var id struct {
		DUID string `json:"duid"`
	}
	if err := json.Unmarshal(b, &id); err != nil {
		t.Fatalf("dhcp6pd-duid.json: %v", err)
	}
	raw, err := hex.DecodeString(id.DUID)
	if err != nil {
		t.Fatalf("dhcp6pd-duid.json: %v", err)
	}
	d, err := dhcpv6.DUIDFromBytes(raw)
	if err != nil {
		t.Fatalf("dhcp6pd-duid.json: %v", err)
	}
	return d
}

// reconfigure builds a Reconfigure asking the client to Renew (§18.3.11),
// with auth as its authentication option if not nil.
func reconfigure(t *testing.T, server, client dhcpv6.DUID, auth dhcpv6.Option) []byte {
	t.Helper()
	m, err := dhcpv6.NewMessage()
	if err != nil {
		t.Fatal(err)
	}
	m.MessageType = dhcpv6.MessageTypeReconfigure
	m.TransactionID = dhcpv6.TransactionID{} // §18.3.11: transaction ID 0
	m.AddOption(dhcpv6.OptServerID(server))
	m.AddOption(dhcpv6.OptClientID(client))
	m.AddOption(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionReconfMessage, OptionData: []byte{byte(dhcpv6.MessageTypeRenew)}})
	if auth != nil {
		m.AddOption(auth)
	}
	return m.ToBytes()
}

// fakeReconfigureAuth is an RFC 8415 §21.11 authentication option of the
// reconfigure key protocol (§20.4: protocol 3, algorithm 1 HMAC-MD5, RDM 0)
// carrying a random digest, as an attacker without the key would send.
func fakeReconfigureAuth(t *testing.T) dhcpv6.Option {
	t.Helper()
	data := []byte{3, 1, 0}
	data = binary.BigEndian.AppendUint64(data, uint64(time.Now().Unix()))
	digest := make([]byte, 16)
	if _, err := rand.Read(digest); err != nil {
		t.Fatal(err)
	}
	data = append(data, 2) // type 2: HMAC-MD5 digest of the message
	data = append(data, digest...)
	return &dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionAuth, OptionData: data}
}
