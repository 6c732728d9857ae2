// Package clat is the lab's CLAT (RFC 6877 464XLAT customer-side
// translator) for gz-lan-clat. It learns the NAT64 prefix from the PREF64
// option (RFC 8781) of the Router Advertisements on the LAN, picks a
// dedicated /128 from the host's SLAAC /64, and runs tayga as a stateless
// translator between the host's IPv4 (192.0.0.1, RFC 7335) and that /128.
// When the RAs change (renumbering, new PREF64) it reconfigures tayga. The
// PREF64 and the /64 may come from different routers, as on an existing
// network where one router gives the addresses and the gizmo the NAT64.
package clat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

// RFC 7335: 192.0.0.0/29 is for the IPv4 side of a CLAT.
var (
	HostIPv4  = netip.MustParseAddr("192.0.0.1") // the host's IPv4 address, on the tun
	TaygaIPv4 = netip.MustParseAddr("192.0.0.2") // tayga's own address
)

// iid is the interface identifier of the CLAT's dedicated address, so that
// the translated traffic is recognisable ("c1a7") in captures and logs.
var iid = [8]byte{0, 0, 0, 0, 0, 0, 0xc1, 0xa7}

// tunMTU leaves room on the 1500-byte LAN for the 20 bytes an IPv6 header
// adds to an IPv4 packet (RFC 7915 §5.1). It must stay >= 1280: Linux turns
// IPv6 off on a link with a smaller MTU (RFC 8200 §5), and the route to the
// CLAT address needs IPv6 on the tun.
const tunMTU = 1480

// Config of the CLAT.
type Config struct {
	Interface string // LAN interface (eth0)
	Tun       string // tayga's tun device (clat)
	Dir       string // config and state files
	Tayga     string // tayga binary; empty means "tayga"
	Logger    *slog.Logger
}

// Translation is what the CLAT does: translate between HostIPv4 and
// CLATAddr, with IPv4 destinations mapped into Pref64 (RFC 6052).
type Translation struct {
	Pref64   netip.Prefix `json:"pref64"`
	Prefix   netip.Prefix `json:"prefix"` // the SLAAC /64 CLATAddr is from
	CLATAddr netip.Addr   `json:"clat_addr"`
}

// Choose derives the translation from a Router Advertisement. It needs a
// PREF64 with a non-zero lifetime (RFC 8781 §4: zero means stop using it)
// and an autonomous /64 prefix that is still preferred (RFC 4862 §5.5.3);
// a global prefix wins over a ULA one.
func Choose(ra *ndp.RouterAdvertisement) (Translation, bool) {
	var t Translation
	var ula netip.Prefix
	for _, o := range ra.Options {
		switch o := o.(type) {
		case *ndp.PREF64:
			if o.Lifetime > 0 && !t.Pref64.IsValid() && o.Prefix.Addr().Is6() {
				t.Pref64 = o.Prefix.Masked()
			}
		case *ndp.PrefixInformation:
			if !o.AutonomousAddressConfiguration || o.PrefixLength != 64 || o.PreferredLifetime == 0 {
				continue
			}
			p := netip.PrefixFrom(o.Prefix, 64).Masked()
			if !p.Addr().Is6() || p.Addr().Is4In6() || p.Addr().IsLinkLocalUnicast() || p.Addr().IsMulticast() {
				continue
			}
			if p.Addr().IsPrivate() {
				if !ula.IsValid() {
					ula = p
				}
				continue
			}
			if !t.Prefix.IsValid() {
				t.Prefix = p
			}
		}
	}
	if !t.Prefix.IsValid() {
		t.Prefix = ula
	}
	if !t.Pref64.IsValid() || !t.Prefix.IsValid() {
		return Translation{}, false
	}
	a := t.Prefix.Addr().As16()
	copy(a[8:], iid[:])
	t.CLATAddr = netip.AddrFrom16(a)
	return t, true
}

// maxRouters bounds the routers whose RAs Merge is given: a LAN has one
// or two.
const maxRouters = 8

// Merge is one RA with the options of each router's latest RA, in the
// order of the routers' addresses, so that Choose sees a PREF64 from one
// router and a prefix from another.
func Merge(latest map[netip.Addr]*ndp.RouterAdvertisement) *ndp.RouterAdvertisement {
	routers := slices.SortedFunc(maps.Keys(latest), netip.Addr.Compare)
	m := &ndp.RouterAdvertisement{}
	for _, r := range routers {
		m.Options = append(m.Options, latest[r].Options...)
	}
	return m
}

// TaygaConf renders tayga's configuration for t.
func TaygaConf(tun string, t Translation) string {
	return fmt.Sprintf(`# gizmo lab CLAT (written by lab/internal/clat)
tun-device %s
ipv4-addr %s
prefix %s
map %s %s
`, tun, TaygaIPv4, t.Pref64, HostIPv4, t.CLATAddr)
}

// Run listens for RAs on cfg.Interface and keeps tayga configured until ctx
// is done.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Tayga == "" {
		cfg.Tayga = "tayga"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return fmt.Errorf("clat: %w", err)
	}
	c, ifi, err := listen(ctx, cfg.Interface)
	if err != nil {
		return err
	}
	defer c.Close()
	r := &runner{cfg: cfg, ifi: ifi}
	defer r.stopTayga()

	rs := &ndp.RouterSolicitation{Options: []ndp.Option{
		&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: ifi.HardwareAddr},
	}}
	var nextRS time.Time
	latest := map[netip.Addr]*ndp.RouterAdvertisement{}
	for ctx.Err() == nil {
		if !r.cur.CLATAddr.IsValid() && time.Now().After(nextRS) {
			// RFC 4861 §6.3.7: solicit rather than wait for the next
			// unsolicited RA; repeat while nothing usable was heard.
			if err := c.WriteTo(rs, nil, netip.MustParseAddr("ff02::2")); err != nil {
				cfg.Logger.Warn("router solicitation", "err", err)
			}
			nextRS = time.Now().Add(4 * time.Second)
		}
		if r.taygaDied() {
			cfg.Logger.Warn("tayga exited; restarting in 1s")
			time.Sleep(time.Second)
			if err := r.startTayga(); err != nil {
				cfg.Logger.Error("restart tayga", "err", err)
			}
		}
		_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		msg, _, from, err := c.ReadFrom()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// Malformed packets are dropped by the parser with an error;
			// keep listening.
			cfg.Logger.Debug("read RA", "err", err)
			continue
		}
		ra, ok := msg.(*ndp.RouterAdvertisement)
		if !ok {
			continue
		}
		if _, known := latest[from]; !known && len(latest) >= maxRouters {
			cfg.Logger.Warn("too many routers; RA ignored", "router", from)
			continue
		}
		latest[from] = ra
		t, ok := Choose(Merge(latest))
		if !ok || t == r.cur {
			continue
		}
		cfg.Logger.Info("RA changes the translation", "router", from, "pref64", t.Pref64, "clat", t.CLATAddr)
		if err := r.apply(ctx, t); err != nil {
			cfg.Logger.Error("configure CLAT", "err", err)
			continue
		}
	}
	return nil
}

// listen waits for the interface and its link-local address.
func listen(ctx context.Context, name string) (*ndp.Conn, *net.Interface, error) {
	var last error
	for {
		ifi, err := net.InterfaceByName(name)
		if err == nil {
			c, _, err := ndp.Listen(ifi, ndp.LinkLocal)
			if err == nil {
				var f ipv6.ICMPFilter
				f.SetAll(true)
				f.Accept(ipv6.ICMPTypeRouterAdvertisement)
				if err := c.SetICMPFilter(&f); err != nil {
					c.Close()
					return nil, nil, fmt.Errorf("clat: ICMPv6 filter: %w", err)
				}
				return c, ifi, nil
			}
			last = err
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("clat: listen on %s: %w", name, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

type runner struct {
	cfg   Config
	ifi   *net.Interface
	cur   Translation
	tayga *exec.Cmd
	done  chan struct{}
}

func run(ctx context.Context, argv ...string) error {
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("clat: %s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (r *runner) apply(ctx context.Context, t Translation) error {
	r.stopTayga()
	tun, ifname := r.cfg.Tun, r.cfg.Interface
	if old := r.cur; old.CLATAddr.IsValid() {
		// Best effort: the old address may already be gone.
		_ = run(ctx, "ip", "-6", "route", "del", old.CLATAddr.String()+"/128", "dev", tun)
		_ = run(ctx, "ip", "-6", "neigh", "del", "proxy", old.CLATAddr.String(), "dev", ifname)
	}
	conf := filepath.Join(r.cfg.Dir, "tayga.conf")
	if err := os.WriteFile(conf, []byte(TaygaConf(tun, t)), 0o644); err != nil {
		return fmt.Errorf("clat: %w", err)
	}
	if _, err := net.InterfaceByName(tun); err != nil {
		if err := run(ctx, r.cfg.Tayga, "-c", conf, "--mktun"); err != nil {
			return err
		}
	}
	steps := [][]string{
		{"ip", "link", "set", tun, "up", "mtu", fmt.Sprint(tunMTU)},
		{"ip", "addr", "replace", HostIPv4.String() + "/29", "dev", tun},
		{"ip", "route", "replace", "default", "dev", tun, "src", HostIPv4.String()},
		{"ip", "-6", "route", "replace", t.CLATAddr.String() + "/128", "dev", tun},
		// The gizmo reaches the CLAT address on the LAN: answer ND for it.
		{"sysctl", "-q", "-w", "net.ipv6.conf." + ifname + ".proxy_ndp=1"},
		{"ip", "-6", "neigh", "replace", "proxy", t.CLATAddr.String(), "dev", ifname},
	}
	for _, s := range steps {
		if err := run(ctx, s...); err != nil {
			return err
		}
	}
	r.cur = t
	b, _ := json.MarshalIndent(t, "", "  ")
	if err := os.WriteFile(filepath.Join(r.cfg.Dir, "clat.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("clat: %w", err)
	}
	return r.startTayga()
}

func (r *runner) startTayga() error {
	cmd := exec.Command(r.cfg.Tayga, "-c", filepath.Join(r.cfg.Dir, "tayga.conf"), "--nodetach")
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("clat: start tayga: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	r.tayga, r.done = cmd, done
	r.cfg.Logger.Info("tayga running", "pid", cmd.Process.Pid)
	return nil
}

func (r *runner) taygaDied() bool {
	if r.tayga == nil {
		return false
	}
	select {
	case <-r.done:
		r.tayga = nil
		return true
	default:
		return false
	}
}

func (r *runner) stopTayga() {
	if r.tayga == nil {
		return
	}
	_ = r.tayga.Process.Signal(os.Interrupt)
	select {
	case <-r.done:
	case <-time.After(3 * time.Second):
		_ = r.tayga.Process.Kill()
		<-r.done
	}
	r.tayga = nil
}
