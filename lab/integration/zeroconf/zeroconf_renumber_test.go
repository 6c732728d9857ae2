package zeroconf

// Issue 9, variation 8: "The ISP renumbers while LAN hosts are busy. Open
// connections on the old prefix die no later than the RFC 9096 lifetimes
// allow, and new connections use the new prefix at once."

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/lab/netlab"
)

// ndValidLimit is ND_VALID_LIMIT (RFC 9096 §3.4): no PIO from a CE router
// may keep a prefix valid for longer.
const ndValidLimit = 5400 * time.Second

// keepAlive is one HTTP/1.1 connection from a LAN host that is kept open
// and used again and again, as a busy host's long-lived session would be.
type keepAlive struct {
	conn net.Conn
	br   *bufio.Reader
}

// get sends one request on the open connection and returns the client
// address the server saw. A request that gets no answer within wait counts
// as a dead connection.
func (k *keepAlive) get(wait time.Duration) (netip.Addr, error) {
	if err := k.conn.SetDeadline(time.Now().Add(wait)); err != nil {
		return netip.Addr{}, err
	}
	if _, err := fmt.Fprintf(k.conn, "GET / HTTP/1.1\r\nHost: v6only\r\n\r\n"); err != nil {
		return netip.Addr{}, err
	}
	resp, err := http.ReadResponse(k.br, nil)
	if err != nil {
		return netip.Addr{}, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return netip.Addr{}, err
	}
	return clientOf(string(body))
}

// clientOf parses the lab servers' "client=<ip>" (lab/README.md).
func clientOf(body string) (netip.Addr, error) {
	for _, f := range strings.Fields(body) {
		if v, ok := strings.CutPrefix(f, "client="); ok {
			return netip.ParseAddr(v)
		}
	}
	return netip.Addr{}, fmt.Errorf("no client= in %q", body)
}

// TestRenumberWhileBusy: gz-lan-v6 keeps a TCP connection to the IPv6-only
// server in gz-inet busy on its address in the delegated prefix, and the
// ISP renumbers (Kea restarted on the other pool with its leases
// forgotten: the gizmo's next Renew gets a new /56 and the old one with
// lifetimes 0).
//
// What the product does, checked here:
//   - New connections use the new prefix at once: the same RA that brings
//     the new prefix deprecates the old one (preferred lifetime 0,
//     RFC 7084 L-13), so the host's source address selection
//     (RFC 6724 rule 3) picks the new address for the first
//     connection after it.
//   - The old address stays valid only as long as the old lease had left,
//     never more than ND_VALID_LIMIT (RFC 9096 §3.4; gizmo/derive
//     NewDelegation), and the gizmo keeps routing the old /64 until then
//     (gizmo/plan NetworkOf keeps the retired prefix), so the open
//     connection keeps working while its address is valid.
//   - When that valid lifetime ends the host drops the address and the
//     gizmo its route: the open connection dies then and no later.
//
// In the lab the ISP keeps routing the whole PD aggregate to the gizmo; a
// real ISP that withdraws the old prefix at once would cut the open
// connection at the moment of renumbering, which no CE router can prevent.
func TestRenumberWhileBusy(t *testing.T) {
	l := upLab(t, netlab.Options{})
	ctx := testContext(t, 3*time.Minute)
	old, oldLAN, _ := delegation(t, ctx, l)
	oldAddr, err := netlab.WaitAddr(ctx, netlab.NSLanV6, netlab.HostIf, oldLAN)
	if err != nil {
		t.Fatal(err)
	}

	server := netip.AddrPortFrom(netlab.V6OnlyServer, 80).String()
	conn, err := netlab.DialContext(ctx, netlab.NSLanV6, "tcp", server)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	busy := &keepAlive{conn: conn, br: bufio.NewReader(conn)}
	// get checks that the open connection still carries a request from the
	// old address.
	get := func(when string) {
		t.Helper()
		c, err := busy.get(5 * time.Second)
		if err != nil {
			t.Fatalf("%s: the open connection from %s died: %v", when, oldAddr, err)
		}
		if c != oldAddr {
			t.Fatalf("%s: the open connection's source is %s, want %s", when, c, oldAddr)
		}
	}
	get("before renumbering")

	pool, err := l.Renumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The old lease's deadline, as the gizmo knows it: the delegation
	// until the gizmo renews (at T1), a retired prefix after that.
	var s lifetimeStatus
	if err := apiJSON(ctx, "/api/status", &s); err != nil {
		t.Fatal(err)
	}
	oldValid := int64(-1)
	known := s.Retired
	if s.Delegated != nil {
		known = append(known, *s.Delegated)
	}
	for _, p := range known {
		if p.Prefix == old.String() {
			oldValid = p.ValidSeconds
		}
	}
	if oldValid < 0 {
		t.Fatalf("the gizmo forgot %s at once: status %+v", old, s)
	}
	oldDeadline := time.Now().Add(time.Duration(oldValid+1) * time.Second)

	// Keep the connection busy while the gizmo renews into the new pool.
	var newPrefix netip.Prefix
	err = netlab.WaitFor(ctx, "a delegation from "+pool.String(), func(ctx context.Context) (bool, error) {
		get("while renumbering")
		var s status
		if apiJSON(ctx, "/api/status", &s) != nil || s.Delegated == nil {
			return false, nil
		}
		p, err := netip.ParsePrefix(s.Delegated.Prefix)
		if err != nil || !pool.Contains(p.Addr()) {
			return false, nil
		}
		newPrefix = p
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	newLAN := netip.PrefixFrom(newPrefix.Addr(), 64)
	newAddr, err := netlab.WaitAddr(ctx, netlab.NSLanV6, netlab.HostIf, newLAN)
	if err != nil {
		t.Fatalf("no usable address in the new prefix %s: %v", newLAN, err)
	}

	// At once: the old address is deprecated, and valid no longer than
	// the old lease allows (capped at ND_VALID_LIMIT).
	a, ok, err := hostAddrIn(ctx, oldLAN)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatalf("gz-lan-v6 dropped %s at once; RFC 9096 lets it live until the old lease ends (%s)", oldAddr, time.Until(oldDeadline).Round(time.Second))
	}
	if !a.Deprecated || a.Preferred != 0 {
		t.Errorf("the old address %s is still preferred (preferred_lft %v) next to %s", a.Prefix, a.Preferred, newAddr)
	}
	// Lifetimes travel in whole seconds (the RA, then the kernel's
	// valid_lft): allow the one second of rounding between the lease's
	// end, measured here, and what the host shows.
	if limit := min(ndValidLimit, time.Until(oldDeadline)) + time.Second; a.Valid > limit {
		t.Errorf("the old address %s is valid for %v, more than RFC 9096 allows (%v: ND_VALID_LIMIT or the old lease)", a.Prefix, a.Valid, limit)
	}
	t.Logf("renumbered: %s deprecated, valid %v (old lease ends in %v); new %s", a.Prefix, a.Valid, time.Until(oldDeadline).Round(time.Second), newAddr)
	// A new connection uses the new prefix.
	body, err := netlab.HTTPGet(ctx, netlab.NSLanV6, "http://"+server+"/")
	if err != nil {
		t.Fatal(err)
	}
	if c, err := clientOf(body); err != nil || c != newAddr {
		t.Errorf("a new connection came from %v (%v), want the new address %s", c, err, newAddr)
	}
	// The open one goes on from the deprecated address.
	get("after the host deprecated the old address")

	// Until the old address expires, the open connection keeps working; a
	// request that fails means the connection died. It must be dead once
	// the address is gone, which must happen by the old lease's end.
	var lastOK time.Time
	var died error
	err = netlab.WaitFor(ctx, "the old address "+oldAddr.String()+" to expire", func(ctx context.Context) (bool, error) {
		_, ok, err := hostAddrIn(ctx, oldLAN)
		if err != nil {
			return false, nil
		}
		if died == nil {
			if _, err := busy.get(3 * time.Second); err != nil {
				died = err
			} else {
				lastOK = time.Now()
			}
		}
		if ok && time.Now().After(oldDeadline.Add(3*time.Second)) {
			return false, fmt.Errorf("the old address outlived the old lease (ended %s ago)", time.Since(oldDeadline).Round(time.Second))
		}
		return !ok, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("open connection: last answer %v before the old lease's end, then %v", oldDeadline.Sub(lastOK).Round(100*time.Millisecond), died)
	if died != nil && lastOK.Before(oldDeadline.Add(-5*time.Second)) {
		t.Errorf("the open connection died at %s, %s before its address expired: %v",
			lastOK.Format(time.TimeOnly), time.Until(oldDeadline).Round(time.Second), died)
	}
	if died == nil {
		if c, err := busy.get(5 * time.Second); err == nil {
			t.Errorf("the open connection from %s still carries requests (server saw %s) after the address expired", oldAddr, c)
		}
	}
	// And the gizmo no longer routes or advertises the old prefix.
	if err := apiJSON(ctx, "/api/status", &s); err != nil {
		t.Fatal(err)
	}
	for _, r := range s.Retired {
		if r.Prefix == old.String() {
			t.Errorf("the gizmo still phases out %s after its lease ended: %+v", old, r)
		}
	}
}
