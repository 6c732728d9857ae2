package netlab

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"codeberg.org/monostack/gizmo/services/vlan"
)

// ISPVLANID is the VLAN of the "vlan-wan" scenarios: Deutsche Telekom's,
// the first VLAN role detection probes.
const ISPVLANID = 7

// In gz-isp, the "vlan-wan" scenarios put a VLAN switch port between the
// gizmo and the ISP's daemons: ISPVLANPort, the link to the gizmo, is
// tagged (`lab isp-vlan`: services/vlan's tcx programs, since neither this
// kernel's 8021q module nor a vlan_filtering bridge is available) and
// bridged by ISPVLANBridge to ISPVLANService, whose veth peer is ISPWAN,
// the interface the daemons serve. The daemons' packet sockets then see
// only what the VLAN lets through, as behind a real VLAN switch.
const (
	ISPVLANPort    = "isp-vlan"
	ISPVLANService = "isp-svc"
	ISPVLANBridge  = "isp-br"
	macISPVLANPort = "02:00:00:00:01:11"
	macISPService  = "02:00:00:00:01:12"
)

// vlanTopologySteps rewire gz-isp's link to the gizmo as the VLAN switch
// port above; ISPWAN keeps its MAC, addresses and the route of the
// delegation, so that nothing else in the lab changes.
func vlanTopologySteps() [][]string {
	var st [][]string
	isp := func(format string, a ...any) {
		st = append(st, append([]string{"-n", NSISP}, strings.Fields(fmt.Sprintf(format, a...))...))
	}
	isp("route del %s via %s dev %s", PDAggregate, GizmoWANLinkLocal, ISPWAN)
	isp("addr flush dev %s", ISPWAN)
	isp("link set %s down", ISPWAN)
	isp("link set %s name %s address %s addrgenmode none", ISPWAN, ISPVLANPort, macISPVLANPort)
	isp("link add name %s address %s type veth peer name %s address %s", ISPWAN, MACISPWAN, ISPVLANService, macISPService)
	isp("link add name %s type bridge stp_state 0 forward_delay 0 mcast_snooping 0", ISPVLANBridge)
	isp("link set %s addrgenmode none", ISPVLANBridge)
	isp("link set %s addrgenmode none", ISPVLANService)
	for _, l := range []string{ISPVLANPort, ISPVLANService} {
		isp("link set %s master %s up", l, ISPVLANBridge)
	}
	isp("link set %s up", ISPVLANBridge)
	for _, a := range []string{ISPWAN4.String() + "/24", ISPDNS4.String() + "/24", ISPWAN6.String() + "/64", ISPDNS6.String() + "/64"} {
		isp("addr add %s dev %s", a, ISPWAN)
	}
	isp("link set %s up", ISPWAN)
	isp("route add %s via %s dev %s", PDAggregate, GizmoWANLinkLocal, ISPWAN)
	return st
}

// ispVLANPeer tags ISPVLANPort with the scenario's VLAN for as long as the
// lab runs; it is ready once the programs are attached.
func (l *Lab) ispVLANPeer() peer {
	ready := filepath.Join(l.runDir, "isp-vlan.ready")
	return peer{name: "isp-vlan", ns: NSISP,
		argv: []string{l.helper, "isp-vlan", "-interface", ISPVLANPort, "-vlan", fmt.Sprint(l.scenario.ISPVLAN), "-ready", ready},
		ready: func(context.Context) error {
			_, err := os.Stat(ready)
			return err
		}}
}

// RunISPVLAN puts ifname (in the calling process's namespace) on VLAN id,
// writes the file ready once it is, and keeps it there until ctx is done;
// its counters are logged then. `lab isp-vlan` runs it in gz-isp.
func RunISPVLAN(ctx context.Context, logger *slog.Logger, ifname string, id uint16, ready string) error {
	t, err := vlan.Attach(ifname, id)
	if err != nil {
		return fmt.Errorf("isp-vlan: %w", err)
	}
	defer t.Close()
	if ready != "" {
		if err := os.WriteFile(ready, nil, 0o644); err != nil {
			return fmt.Errorf("isp-vlan: %w", err)
		}
	}
	logger.Info("isp-vlan: tagging", "interface", ifname, "vlan", id)
	<-ctx.Done()
	s, err := t.Stats()
	logger.Info("isp-vlan: stopped", "interface", ifname, "stats", fmt.Sprintf("%+v", s), "err", err)
	return nil
}
