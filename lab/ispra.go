package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"

	"codeberg.org/monostack/gizmo/lab/netlab"
)

// cmdISPRA is the ISP's RA sender of the "upstream-pref64" scenario
// (netlab/scenario_ra.go); the lab runs it in gz-isp.
func cmdISPRA(ctx context.Context, logger *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("isp-ra", flag.ContinueOnError)
	ifname := fs.String("interface", netlab.ISPWAN, "interface to advertise on")
	pref64 := fs.String("pref64", "", "PREF64 to advertise (RFC 8781); empty: none")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var p netip.Prefix
	if *pref64 != "" {
		var err error
		if p, err = netip.ParsePrefix(*pref64); err != nil {
			return err
		}
	}
	return netlab.RunISPRA(ctx, logger, *ifname, p)
}

// cmdISPVLAN tags gz-isp's link to the gizmo in the "vlan-wan" scenarios
// (netlab/scenario_vlan.go); the lab runs it in gz-isp.
func cmdISPVLAN(ctx context.Context, logger *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("isp-vlan", flag.ContinueOnError)
	ifname := fs.String("interface", netlab.ISPVLANPort, "interface to tag")
	id := fs.String("vlan", strconv.Itoa(netlab.ISPVLANID), "802.1Q VLAN ID")
	ready := fs.String("ready", "", "file to create once the interface is tagged")
	if err := fs.Parse(args); err != nil {
		return err
	}
	n, err := strconv.ParseUint(*id, 10, 12)
	if err != nil {
		return fmt.Errorf("isp-vlan: -vlan %q: %w", *id, err)
	}
	return netlab.RunISPVLAN(ctx, logger, *ifname, uint16(n), *ready)
}
