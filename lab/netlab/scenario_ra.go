package netlab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/ndp"
)

// ispRAInterval is how often the ISP's RA sender advertises, like radvd's
// MinRtrAdvInterval in radvdConf.
const ispRAInterval = 3 * time.Second

// ispRA is the RA radvdConf describes (prefix WANPrefix6, RDNSS ISPDNS6,
// M=0 O=1, router lifetime 1800 s), plus a PREF64 option (RFC 8781) when
// pref64 is valid. Debian's radvd 2.19 has no nat64prefix, so the
// "upstream-pref64" scenario sends this instead of running radvd.
func ispRA(mac net.HardwareAddr, pref64 netip.Prefix) *ndp.RouterAdvertisement {
	ra := &ndp.RouterAdvertisement{
		CurrentHopLimit:           64,
		OtherConfiguration:        true,
		RouterSelectionPreference: ndp.Medium,
		RouterLifetime:            1800 * time.Second,
		Options: []ndp.Option{
			&ndp.PrefixInformation{
				PrefixLength: uint8(WANPrefix6.Bits()), OnLink: true, AutonomousAddressConfiguration: true,
				ValidLifetime: 86400 * time.Second, PreferredLifetime: 14400 * time.Second,
				Prefix: WANPrefix6.Addr(),
			},
			&ndp.RecursiveDNSServer{Lifetime: 20 * time.Second, Servers: []netip.Addr{ISPDNS6}},
			&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac},
		},
	}
	if pref64.IsValid() {
		// RFC 8781 §4.1: a lifetime of at least 3 × the RA interval.
		ra.Options = append(ra.Options, &ndp.PREF64{Lifetime: 30 * time.Second, Prefix: pref64})
	}
	return ra
}

// RunISPRA advertises the ISP's RA on ifname (in the calling process's
// namespace) every few seconds and in answer to Router Solicitations, until
// ctx is done. `lab isp-ra` runs it in gz-isp.
func RunISPRA(ctx context.Context, logger *slog.Logger, ifname string, pref64 netip.Prefix) error {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return fmt.Errorf("isp-ra: %w", err)
	}
	conn, _, err := ndp.Listen(ifi, ndp.LinkLocal)
	if err != nil {
		return fmt.Errorf("isp-ra: listen on %s: %w", ifname, err)
	}
	defer conn.Close()
	if err := conn.JoinGroup(netip.MustParseAddr("ff02::2")); err != nil {
		return fmt.Errorf("isp-ra: join all-routers on %s: %w", ifname, err)
	}
	ra := ispRA(ifi.HardwareAddr, pref64)
	send := func() error {
		return conn.WriteTo(ra, nil, netip.IPv6LinkLocalAllNodes())
	}
	solicited := make(chan struct{}, 1)
	go func() {
		for {
			msg, _, _, err := conn.ReadFrom()
			if err != nil {
				if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
					logger.Warn("isp-ra: read", "err", err)
				}
				return
			}
			if _, ok := msg.(*ndp.RouterSolicitation); ok {
				select {
				case solicited <- struct{}{}:
				default:
				}
			}
		}
	}()
	go func() {
		<-ctx.Done()
		conn.Close()
	}()
	t := time.NewTicker(ispRAInterval)
	defer t.Stop()
	for {
		if err := send(); err != nil && ctx.Err() == nil {
			logger.Warn("isp-ra: send", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-solicited:
		}
	}
}
