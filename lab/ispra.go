package main

import (
	"context"
	"flag"
	"log/slog"
	"net/netip"

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
