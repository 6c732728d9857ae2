package main

import (
	"context"
	"flag"
	"log/slog"
	"net/netip"

	"codeberg.org/monostack/gizmo/lab/internal/aftr"
	"codeberg.org/monostack/gizmo/lab/netlab"
)

// cmdAFTR is the ISP's DS-Lite AFTR of the "ds-lite" scenario; the lab
// runs it in gz-isp.
func cmdAFTR(ctx context.Context, logger *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("aftr", flag.ContinueOnError)
	ifname := fs.String("interface", netlab.ISPWAN, "interface towards the B4")
	addr := fs.String("aftr", netlab.AFTR6.String(), "the AFTR's IPv6 address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	a, err := netip.ParseAddr(*addr)
	if err != nil {
		return err
	}
	return aftr.Run(ctx, logger, *ifname, a)
}
