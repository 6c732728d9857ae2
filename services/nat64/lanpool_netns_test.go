package nat64

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/internal/testns"
)

// A LAN with an IPv6-only host and an IPv4-only device behind one switch,
// and the gizmo on it, as in a home:
//
//	h6 (2001:db8:1000::a) ──┐
//	                        sw (bridge) ── lan0 [gw: 2001:db8:1000::1, 203.0.113.129/25]  uplink0 (a bridge without ports, 192.0.2.100)
//	lg (203.0.113.130)  ────┘
type lanTopo struct {
	h6, lg, sw, gw string
	lanIdx, wanIdx int
}

func newLANTopo(t *testing.T) *lanTopo {
	t.Helper()
	testns.NeedRoot(t)
	id := fmt.Sprintf("gzt-n64l-%04x", rand.IntN(0x10000))
	tp := &lanTopo{h6: id + "-h6", lg: id + "-lg", sw: id + "-sw", gw: id + "-gw"}
	for _, ns := range []string{tp.h6, tp.lg, tp.sw, tp.gw} {
		sh(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		sh(t, in(ns, "ip", "link", "set", "lo", "up")...)
	}
	sh(t, in(tp.sw, "ip", "link", "add", "br0", "type", "bridge")...)
	sh(t, in(tp.sw, "ip", "link", "set", "br0", "up")...)
	for port, peer := range map[string][2]string{"p-gw": {tp.gw, "lan0"}, "p-h6": {tp.h6, "eth0"}, "p-lg": {tp.lg, "eth0"}} {
		sh(t, "ip", "link", "add", port, "netns", tp.sw, "type", "veth", "peer", "name", peer[1], "netns", peer[0])
		sh(t, in(tp.sw, "ip", "link", "set", port, "master", "br0", "up")...)
		sh(t, in(peer[0], "ip", "link", "set", peer[1], "up")...)
	}
	sh(t, in(tp.h6, "ip", "addr", "add", "2001:db8:1000::a/64", "dev", "eth0", "nodad")...)
	sh(t, in(tp.h6, "ip", "-6", "route", "add", "default", "via", "2001:db8:1000::1")...)
	sh(t, in(tp.lg, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")...)
	sh(t, in(tp.lg, "ip", "addr", "add", "203.0.113.130/25", "dev", "eth0")...)
	sh(t, in(tp.lg, "ip", "route", "add", "default", "via", "203.0.113.129")...)
	sh(t, in(tp.gw, "ip", "addr", "add", "2001:db8:1000::1/64", "dev", "lan0", "nodad")...)
	sh(t, in(tp.gw, "ip", "addr", "add", "203.0.113.129/25", "dev", "lan0")...)
	sh(t, in(tp.gw, "ip", "link", "add", "uplink0", "type", "bridge")...)
	sh(t, in(tp.gw, "ip", "addr", "add", "192.0.2.100/24", "dev", "uplink0")...)
	sh(t, in(tp.gw, "ip", "link", "set", "uplink0", "up")...)
	sh(t, in(tp.gw, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")...)
	for name, dst := range map[string]*int{"lan0": &tp.lanIdx, "uplink0": &tp.wanIdx} {
		fmt.Sscan(sh(t, in(tp.gw, "cat", "/sys/class/net/"+name+"/ifindex")...), dst)
	}
	return tp
}

// plan is the gizmo's plan for the LAN: both pools, the LAN's devices
// under lanPref (the PREF64 itself when they are equal).
func (tp *lanTopo) plan(pref64, lanPref netip.Prefix) Plan {
	return Plan{
		Pool4:       netip.MustParseAddr("192.0.2.100"),
		Pref64:      pref64,
		LANPrefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:1000::/64")},
		Router6:     netip.MustParseAddr("2001:db8:1000::1"),
		Deny4:       []netip.Prefix{lanLegNet4},
		LANIfindex:  tp.lanIdx, WANIfindex: tp.wanIdx,
		LANMTU: 1500, WANMTU: 1500,
		LANLegacy: LANLegacy{Addr4: lanPool4, Prefix: lanPref},
	}
}

// apply hands the service a plan and waits until the datapath has it.
func (tp *lanTopo) apply(t *testing.T, s *Service, p Plan) {
	t.Helper()
	s.Update(p)
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		cur := s.dp != nil && s.enabled && s.dp.lan4Link != nil && s.dp.cur.LanPool4 == be32(p.LANLegacy.Addr4.Addr()) &&
			(s.dp.cur.Flags&flagLAN96 != 0) == (p.LANLegacy.Prefix != p.Pref64) && len(s.dp.refused) == len(p.LANLegacy.Refused)
		s.mu.Unlock()
		if cur {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("plan not applied")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNetnsLANPoolReachesTheLANsIPv4Device: the IPv6-only host fetches a
// page from the IPv4-only device on its own LAN through the gizmo, which
// the device sees as the client (its LAN address and a LAN pool port);
// under the network-specific PREF64, then under the /96 of its own that
// goes with the well-known prefix (RFC 6052 §3.1). Refused, the device is
// out of reach and the attempts are counted.
func TestNetnsLANPoolReachesTheLANsIPv4Device(t *testing.T) {
	tp := newLANTopo(t)
	var ln net.Listener
	var err error
	testns.Inside(t, tp.lg, func() { ln, err = net.Listen("tcp4", "203.0.113.130:80") })
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "client=%s\n", r.RemoteAddr)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	s, err := New(Config{ReapInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	testns.Start(t, tp.gw, s.Run)
	// The transport dials on its own goroutines: each dial enters h6.
	dial := func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		testns.Inside(t, tp.h6, func() { c, err = (&net.Dialer{}).DialContext(ctx, network, addr) })
		return c, err
	}
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
	get := func(dst netip.Addr) (string, error) {
		resp, err := client.Get(fmt.Sprintf("http://[%s]/", dst))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	// Fresh veths and the bridge drop frames for a moment: retry the
	// first fetch until a deadline.
	fetch := func(t *testing.T, dst netip.Addr) string {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			body, err := get(dst)
			if err == nil {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET from [%s]: %v; counters %v", dst, err, s.Stats().Counters)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	for _, c := range []struct {
		name            string
		pref64, lanPref netip.Prefix
	}{
		{"under the network-specific PREF64", lanPref, lanPref},
		{"under a /96 of its own beside the well-known prefix", wellKnown, ulaPref96},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := tp.plan(c.pref64, c.lanPref)
			tp.apply(t, s, p)
			if st := s.Stats(); !st.ToLAN || st.ToInternet != p.Pool4.IsValid() {
				t.Errorf("stats say to the LAN %v, to the internet %v; the plan has a LAN pool and WAN pool %v", st.ToLAN, st.ToInternet, p.Pool4)
			}
			body := fetch(t, in96(c.lanPref, printer))
			ap, err := netip.ParseAddrPort(strings.TrimPrefix(strings.TrimSpace(body), "client="))
			if err != nil || ap.Addr() != lanPool4.Addr() || ap.Port() < DefaultLANPorts.Min {
				t.Errorf("the device saw %q, want the gizmo's LAN address and a LAN pool port", body)
			}
			if out, err := command(in(tp.h6, "ping", "-c", "2", "-i", "0.2", "-W", "2", in96(c.lanPref, printer).String())).CombinedOutput(); err != nil {
				t.Errorf("ping: %v\n%s", err, out)
			}
		})
	}
	st := s.Stats()
	if len(st.Hosts) != 1 || st.Hosts[0].LANBytesOut == 0 || st.Hosts[0].LANBytesIn == 0 || st.Hosts[0].BytesOut != 0 {
		t.Errorf("host counters %+v: want the LAN pool's bytes only", st.Hosts)
	}

	t.Run("refused", func(t *testing.T) {
		p := tp.plan(wellKnown, ulaPref96)
		p.LANLegacy.Refused = []netip.Addr{printer}
		tp.apply(t, s, p)
		if body, err := get(in96(ulaPref96, printer)); err == nil {
			t.Errorf("a refused device answered: %q", body)
		}
		if s.Stats().Counters["lan_legacy_refused"] == 0 {
			t.Errorf("lan_legacy_refused not counted: %v", s.Stats().Counters)
		}
	})
}
