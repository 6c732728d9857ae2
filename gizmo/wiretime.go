package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/plan"
	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/timesync"
)

// wireTime runs the time service: NTP from the ISP's servers (or the
// public pool), the time saved across reboots, and an NTP server for the
// LAN. It puts the saved time back at once, before any service runs: the
// WAN's DHCPv4 client and the delegation client compare the deadlines they
// stored with the clock, and a board without a real-time clock starts at
// its image's build time.
func wireTime(d *daemon, cfg config, _, lan string) error {
	tc := timesync.Config{
		StateDir:  filepath.Join(cfg.StateDir, "timesync"),
		Interface: lan,
		Logger:    d.log,
		Resolver:  upstreamResolver(d.upstreamDNS),
		OnSync: func(source string, at time.Time) {
			d.observe(func(st *state.State) { st.Clock = state.Clock{Synced: true, Source: source, LastSync: at} })
		},
	}
	if !cfg.SetClock {
		tc.Clock = sharedClock{log: d.log}
	}
	ts, err := timesync.New(tc)
	if err != nil {
		return err
	}
	ts.Restore()
	d.options.TimeService = true
	d.add("timesync", ts, func(p *plan.Plans) { ts.Update(p.TimeSync) })
	d.wired.timesync = ts
	return nil
}

// clockTrusted reports whether the wall clock has been synchronised with
// NTP in this run (wan.Config.ClockTrusted, dhcp6pd.Config.ClockTrusted):
// only then can a deadline stored before a restart be judged by it. The
// saved time the clock was restored from is a lower bound, never proof.
func (d *daemon) clockTrusted() bool {
	ts := d.wired.timesync
	if ts == nil {
		return false
	}
	ok, _, _ := ts.Synced()
	return ok
}

// upstreamDNS are the resolvers the DNS service forwards to.
func (d *daemon) upstreamDNS() []netip.AddrPort {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.st.UpstreamDNS)
}

var errNoUpstreamDNS = errors.New("no upstream DNS resolver known yet")

// upstreamResolver resolves names through the upstream resolvers the
// daemon knows (servers). The appliance has no resolver configuration of
// its own: gokrazy points /etc/resolv.conf at the kernel's /proc/net/pnp,
// which is empty without kernel IP autoconfiguration, so Go's resolver
// would ask localhost, where nothing listens (the gizmo's DNS64 listens on
// its LAN addresses only). Each dial takes the next resolver in turn: Go's
// resolver dials once per attempt, so a retry goes to another one.
func upstreamResolver(servers func() []netip.AddrPort) *net.Resolver {
	var next atomic.Uint64
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			ups := servers()
			if len(ups) == 0 {
				return nil, errNoUpstreamDNS
			}
			ap := ups[(next.Add(1)-1)%uint64(len(ups))]
			var dl net.Dialer
			return dl.DialContext(ctx, network, ap.String())
		},
	}
}

// sharedClock is the system clock of a gizmo that shares it with its host
// (-set-clock=false): it is read, never set. The time service measures it
// against NTP and serves it; the host keeps it right.
type sharedClock struct{ log *slog.Logger }

func (sharedClock) Now() time.Time { return time.Now() }

func (c sharedClock) Step(d time.Duration) error {
	c.log.Info("timesync: not stepping the host's clock (-set-clock=false)", "offset", d)
	return nil
}

func (c sharedClock) Slew(d time.Duration) error {
	c.log.Debug("timesync: not slewing the host's clock (-set-clock=false)", "offset", d)
	return nil
}
