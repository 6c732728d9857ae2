package roles

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"codeberg.org/monostack/gizmo/internal/testns"
	"codeberg.org/monostack/gizmo/services/vlan"
)

// ispVLAN is the VLAN the test's ISP delivers on: not the first of
// CommonVLANs, so that the probe must look past it.
const ispVLAN = 10

// TestDetectFindsTheVLAN builds an ISP whose radvd and Kea DHCPv4 server
// answer only on VLAN 10 and a gizmo namespace with two ports, one of them
// towards the ISP. The ISP is wired as a VLAN switch port: the link to the
// gizmo (wan) is tagged by services/vlan and bridged to the servers'
// interface (svc), so that the servers' packet sockets see only what the
// VLAN lets through. Detection with no VLAN set must find that port on
// VLAN 10 through the real servers, a set VLAN 10 must find it too, a set
// VLAN 7 must hear nothing, and the probes must leave no interface and no
// promiscuous port behind. Then the WAN is put on VLAN 10 as the daemon
// does, and the untagged probe of uplink0 hears the ISP through it.
func TestDetectFindsTheVLAN(t *testing.T) {
	gz, isp := gizmoAndISP(t, "rvlan")
	testns.Sysctl(t, isp, "net.ipv6.conf.all.forwarding=1", "net.ipv6.conf.default.accept_dad=0")
	testns.IP(t, "-n", gz, "link", "add", "eth0", "type", "veth", "peer", "name", "x0")
	testns.IP(t, "-n", gz, "link", "add", "eth1", "type", "veth", "peer", "name", "wan", "netns", isp)
	testns.IP(t, "-n", gz, "link", "set", "x0", "up")
	testns.IP(t, "-n", isp, "link", "add", "svc", "type", "veth", "peer", "name", "svc-port")
	testns.IP(t, "-n", isp, "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0", "mcast_snooping", "0")
	for _, l := range []string{"wan", "svc-port"} {
		testns.IP(t, "-n", isp, "link", "set", l, "master", "br0", "up")
	}
	testns.IP(t, "-n", isp, "link", "set", "br0", "up")
	var tagger *vlan.Tagger
	err := testns.Do(isp, func() (err error) { tagger, err = vlan.Attach("wan", ispVLAN); return err })
	if errors.Is(err, ebpf.ErrNotSupported) {
		t.Skipf("this kernel cannot tag in eBPF (tcx, Linux 6.6): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tagger.Close() })
	testns.IP(t, "-n", isp, "link", "set", "svc", "up")
	testns.IP(t, "-n", gz, "link", "set", "eth1", "up")
	testns.IP(t, "-n", isp, "addr", "add", "2001:db8:0:1::1/64", "dev", "svc", "nodad")
	testns.IP(t, "-n", isp, "addr", "add", "192.0.2.1/24", "dev", "svc")
	dir := t.TempDir()
	conf := filepath.Join(dir, "radvd.conf")
	os.WriteFile(conf, []byte(`interface svc { AdvSendAdvert on; MinRtrAdvInterval 3; MaxRtrAdvInterval 10; prefix 2001:db8:0:1::/64 {}; };`), 0o644)
	testns.StartCommand(t, testns.Command(isp, "radvd", "-n", "-C", conf, "-p", filepath.Join(dir, "radvd.pid"), "-m", "stderr"))
	kea, _ := json.Marshal(map[string]any{"Dhcp4": map[string]any{
		"interfaces-config": map[string]any{"interfaces": []string{"svc"}},
		"lease-database":    map[string]any{"type": "memfile", "persist": false},
		"subnet4": []map[string]any{{"id": 1, "subnet": "192.0.2.0/24", "interface": "svc",
			"pools": []map[string]any{{"pool": "192.0.2.100 - 192.0.2.199"}}}},
	}})
	keaConf := filepath.Join(dir, "kea-dhcp4.conf")
	os.WriteFile(keaConf, kea, 0o644)
	cmd := testns.Command(isp, "kea-dhcp4", "-c", keaConf)
	cmd.Env = append(os.Environ(), "KEA_PIDFILE_DIR="+dir, "KEA_LOCKFILE_DIR="+dir)
	testns.StartCommand(t, cmd)
	testns.WaitLinkLocal(t, isp, "svc")

	testns.RunChild(t, gz, "TestDetectVLANChild", "GZT_ROLES_VLAN_CHILD=1")
	if s, err := tagger.Stats(); err != nil || s.Received == 0 || s.DroppedUntagged == 0 {
		t.Errorf("ISP side: %+v (%v); want tagged frames received and the untagged probe's dropped", s, err)
	}
}

func TestDetectVLANChild(t *testing.T) {
	if os.Getenv("GZT_ROLES_VLAN_CHILD") != "1" {
		t.Skip("runs only as the child of TestDetectFindsTheVLAN")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := context.Background()
	ports := []string{"eth0", "eth1"}
	before := linkNames(t)

	r, ev, err := DetectWith(ctx, ports, 4*time.Second, VLANProbe(0), log)
	if err != nil {
		t.Fatalf("Detect: %v (evidence %+v)", err, ev)
	}
	if want := (Roles{WAN: "eth1", VLAN: ispVLAN, LANPorts: []string{"eth0"}}); !slices.Equal(r.LANPorts, want.LANPorts) || r.WAN != want.WAN || r.VLAN != want.VLAN {
		t.Errorf("roles = %v, want %v (evidence %+v)", r, want, ev)
	}
	if e := EvidenceOf(ev, "eth1"); !e.RouterAdvertisement || !e.DHCPv4Server {
		t.Errorf("eth1 heard %s; want radvd's default router and Kea's OFFER on VLAN %d", e.Heard(), ispVLAN)
	}

	e := VLANProbe(ispVLAN)(ctx, "eth1", 4*time.Second, log)
	if e.VLAN != ispVLAN || !e.RouterAdvertisement || !e.DHCPv4Server {
		t.Errorf("with VLAN %d set, eth1 heard %s (%+v)", ispVLAN, e.Heard(), e)
	}
	if e := VLANProbe(7)(ctx, "eth1", 3*time.Second, log); score(e) != 0 || !e.LinkUp {
		t.Errorf("with VLAN 7 set, eth1 heard %s; the ISP is on VLAN %d", e.Heard(), ispVLAN)
	}

	if after := linkNames(t); !slices.Equal(before, after) {
		t.Errorf("the probes changed the links: %v, then %v", before, after)
	}
	for _, p := range ports {
		if l, err := netlink.LinkByName(p); err != nil || l.Attrs().Promisc != 0 {
			t.Errorf("%s promiscuity after the probes: %v (%v)", p, l.Attrs().Promisc, err)
		}
	}

	// The daemon's part: uplink0 on the VLAN, then it hears the ISP untagged.
	if _, _, err := Apply(r); err != nil {
		t.Fatal(err)
	}
	tg, err := vlan.Attach(WANName, r.VLAN)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if e := Probe(ctx, WANName, 4*time.Second, log); !e.RouterAdvertisement || !e.DHCPv4Server {
		t.Errorf("uplink0 on VLAN %d heard %s", r.VLAN, e.Heard())
	}
}

func linkNames(t *testing.T) []string {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range links {
		out = append(out, l.Attrs().Name)
	}
	slices.Sort(out)
	return out
}
