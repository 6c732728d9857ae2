package netlab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/beevik/ntp"
	"github.com/miekg/dns"
)

const readyTimeout = 20 * time.Second

// peer is a daemon of the lab other than the gizmo.
type peer struct {
	name  string
	ns    string
	argv  []string
	env   []string
	ready func(context.Context) error
}

func (l *Lab) writeFile(rel string, data []byte) (string, error) {
	path := filepath.Join(l.runDir, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("netlab: %w", err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return "", fmt.Errorf("netlab: %w", err)
	}
	return path, nil
}

func (l *Lab) peers() ([]peer, error) {
	var peers []peer

	// gz-inet: the HTTP servers, served by the lab binary itself.
	args := []string{l.helper, "serve-http"}
	for _, s := range Servers() {
		args = append(args, s.Name+"="+netip.AddrPortFrom(s.Addr, 80).String())
	}
	peers = append(peers, peer{name: "http", ns: NSInet, argv: args, ready: func(ctx context.Context) error {
		for _, s := range Servers() {
			c, err := DialContext(ctx, NSInet, "tcp", netip.AddrPortFrom(s.Addr, 80).String())
			if err != nil {
				return err
			}
			c.Close()
		}
		return nil
	}})

	// gz-isp: BIND.
	ndir := filepath.Join(l.runDir, "named")
	conf, err := l.writeFile("named/named.conf", []byte(namedConf(ndir, l.scenario.ISPNAT64)))
	if err != nil {
		return nil, err
	}
	for name, z := range zones() {
		if _, err := l.writeFile(filepath.Join("named", name), []byte(z)); err != nil {
			return nil, err
		}
	}
	peers = append(peers, peer{name: "named", ns: NSISP,
		argv: []string{"named", "-g", "-n", "1", "-c", conf},
		ready: func(ctx context.Context) error {
			for _, a := range []netip.Addr{ISPDNS4, ISPDNS6} {
				if err := dnsProbe(ctx, NSISP, a); err != nil {
					return err
				}
			}
			return nil
		}})

	// gz-isp: Kea DHCPv6 (prefix delegation) and DHCPv4.
	k6, err := l.keaPeer("kea6", "kea-dhcp6", kea6Paths(l.runDir), func(p keaPaths) ([]byte, error) {
		return l.kea6Config(p, l.pdPool)
	})
	if err != nil {
		return nil, err
	}
	k4, err := l.keaPeer("kea4", "kea-dhcp4", kea4Paths(l.runDir), func(p keaPaths) ([]byte, error) {
		return kea4Conf(p, l.opts.Lifetimes)
	})
	if err != nil {
		return nil, err
	}
	peers = append(peers, k6, k4)

	// gz-isp: chrony, the ISP's NTP server, which Kea announces.
	cdir := filepath.Join(l.runDir, "chrony")
	cconf, err := l.writeFile("chrony/chrony.conf", []byte(chronyConf(cdir)))
	if err != nil {
		return nil, err
	}
	peers = append(peers, peer{name: "chrony", ns: NSISP,
		argv: []string{"chronyd", "-x", "-d", "-u", "root", "-f", cconf},
		ready: func(ctx context.Context) error {
			for _, a := range []netip.Addr{ISPWAN6, ISPWAN4} {
				if err := ntpProbe(ctx, NSISP, a); err != nil {
					return err
				}
			}
			return nil
		}})

	// gz-isp: radvd.
	rconf, err := l.writeFile("radvd/radvd.conf", []byte(radvdConf()))
	if err != nil {
		return nil, err
	}
	rpid := filepath.Join(l.runDir, "radvd", "radvd.pid")
	peers = append(peers, peer{name: "radvd", ns: NSISP,
		argv: []string{"radvd", "-n", "-m", "stderr", "-C", rconf, "-p", rpid},
		ready: func(context.Context) error {
			_, err := os.Stat(rpid)
			return err
		}})

	// LAN hosts.
	for _, h := range []struct {
		name, ns string
		v6only   bool
	}{{"dhcpcd-lan-v6", NSLanV6, true}, {"dhcpcd-lan-legacy", NSLanLegacy, false}} {
		p, err := l.dhcpcdPeer(h.name, h.ns, h.v6only)
		if err != nil {
			return nil, err
		}
		peers = append(peers, p)
	}
	// gz-lan-legacy: a web server on whatever address its lease gives it,
	// the LAN's IPv4-only device that IPv6-only hosts reach through the
	// NAT64's LAN pool.
	legacyWeb := netip.AddrPortFrom(netip.IPv4Unspecified(), 80)
	peers = append(peers, peer{name: "http-lan-legacy", ns: NSLanLegacy,
		argv: []string{l.helper, "serve-http", LanLegacyHost + "=" + legacyWeb.String()},
		ready: func(ctx context.Context) error {
			c, err := DialContext(ctx, NSLanLegacy, "tcp", netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 80).String())
			if err != nil {
				return err
			}
			return c.Close()
		}})
	if l.scenario.ISPNAT64.IsValid() {
		p, err := l.ispNAT64Peer()
		if err != nil {
			return nil, err
		}
		peers = append(peers, p)
	}
	if l.scenario.ISPVLAN != 0 {
		peers = append(peers, l.ispVLANPeer())
	}
	peers = append(peers, peer{name: "clat", ns: NSLanCLAT,
		argv:  []string{l.helper, "clat", "-interface", HostIf, "-tun", CLATTun, "-dir", filepath.Join(l.runDir, "clat")},
		ready: settled(l.now(), 300*time.Millisecond)})
	return l.scenario.peers(peers, l.helper), nil
}

// ispNAT64Peer is the ISP's NAT64: tayga in gz-isp, stateless with a
// dynamic pool (ISPNAT64Pool) of addresses that gz-inet routes back to
// gz-isp, for the scenario's NAT64 prefix. The script makes tayga's tun
// and its routes, then runs tayga in the foreground; the tun goes with the
// namespace.
func (l *Lab) ispNAT64Peer() (peer, error) {
	dir := filepath.Join(l.runDir, "isp-nat64")
	pfx := l.scenario.ISPNAT64
	conf, err := l.writeFile("isp-nat64/tayga.conf", []byte(fmt.Sprintf(
		"# gizmo lab: the ISP's NAT64 (written by lab/netlab)\ntun-device %s\nipv4-addr %s\nprefix %s\ndynamic-pool %s\ndata-dir %s\n",
		ISPNAT64Tun, ISPNAT64Addr, pfx, ISPNAT64Pool, dir)))
	if err != nil {
		return peer{}, err
	}
	const script = `set -e
tayga -c "$1" --mktun
ip link set "$2" up
ip route replace "$3" dev "$2"
ip -6 route replace "$4" dev "$2"
exec tayga -c "$1" --nodetach`
	return peer{name: "isp-nat64", ns: NSISP,
		argv:  []string{"sh", "-c", script, "isp-nat64", conf, ISPNAT64Tun, ISPNAT64Pool.String(), pfx.String()},
		ready: settled(l.now(), 500*time.Millisecond)}, nil
}

// settled is the readiness check of daemons that expose nothing to poll
// until the gizmo serves them: alive for d after start counts as ready.
func settled(start time.Time, d time.Duration) func(context.Context) error {
	return func(context.Context) error {
		if time.Since(start) < d {
			return errors.New("starting")
		}
		return nil
	}
}

// keaPeer writes the configuration that config makes for paths p to
// <name>/<bin>.conf in the run dir and returns the Kea daemon that runs
// with it in gz-isp.
func (l *Lab) keaPeer(name, bin string, p keaPaths, config func(keaPaths) ([]byte, error)) (peer, error) {
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return peer{}, fmt.Errorf("netlab: %w", err)
	}
	b, err := config(p)
	if err != nil {
		return peer{}, fmt.Errorf("netlab: %s config: %w", name, err)
	}
	conf, err := l.writeFile(name+"/"+bin+".conf", b)
	if err != nil {
		return peer{}, err
	}
	return peer{name: name, ns: NSISP,
		argv: []string{bin, "-c", conf},
		// Kea puts its pid file and logger lock file here; the defaults are
		// under /run/kea and /var/lib/kea on the host.
		env:   []string{"KEA_PIDFILE_DIR=" + p.dir, "KEA_LOCKFILE_DIR=" + p.dir},
		ready: func(ctx context.Context) error { return keaCommand(ctx, p.socket, "list-commands") },
	}, nil
}

// restartKea6 stops Kea DHCPv6 and starts it again with the configuration
// that config makes; with forget, the DHCPv6 leases are gone in between.
// It calls running, under l.mu, once the new process is the lab's kea6,
// and returns when Kea answers.
func (l *Lab) restartKea6(ctx context.Context, forget bool, config func(keaPaths) ([]byte, error), running func()) error {
	l.mu.Lock()
	old := l.procs["kea6"]
	l.mu.Unlock()
	if old == nil {
		return errors.New("kea6 is not running")
	}
	if err := old.stop(5 * time.Second); err != nil {
		return err
	}
	p := kea6Paths(l.runDir)
	if forget {
		// The memfile backend keeps generations as <name>.1, <name>.2, ...
		matches, _ := filepath.Glob(p.leases + "*")
		for _, m := range matches {
			if err := os.Remove(m); err != nil {
				return fmt.Errorf("netlab: %w", err)
			}
		}
	}
	pr, err := l.keaPeer("kea6", "kea-dhcp6", p, config)
	if err != nil {
		return err
	}
	np, err := l.spawn(pr.name, pr.ns, l.LogPath(pr.name), pr.argv, pr.env...)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.procs[pr.name] = np
	running()
	l.mu.Unlock()
	return waitReady(ctx, np, readyTimeout, pr.ready)
}

// kea6Config is Kea DHCPv6's configuration for paths p, delegating from
// pool, as the scenario changes it.
func (l *Lab) kea6Config(p keaPaths, pool netip.Prefix) ([]byte, error) {
	b, err := kea6Conf(p, pool, l.opts.Lifetimes)
	if err != nil {
		return nil, err
	}
	return l.scenario.kea6(b)
}

// dhcpcdPeer runs dhcpcd in its own mount namespace: dhcpcd 9.4 has its
// database (/var/lib/dhcpcd) and run directory (/run/dhcpcd) compiled in,
// and several instances would share pid files and DUIDs. `ip netns exec`
// already gives the command a private mount namespace; inside it, the
// host's dir for this instance is bound over /var/lib/dhcpcd and a tmpfs is
// mounted over /run. Nothing on the host is touched.
func (l *Lab) dhcpcdPeer(name, ns string, v6only bool) (peer, error) {
	dir := filepath.Join(l.runDir, name)
	host := LanLegacyHost
	if v6only {
		host = "lan-v6"
	}
	if _, err := l.writeFile(filepath.Join(name, "dhcpcd.conf"), []byte(dhcpcdConf(host, v6only))); err != nil {
		return peer{}, err
	}
	const script = `set -e
mount --bind "$1" /var/lib/dhcpcd
mount -t tmpfs -o mode=0755 gizmo-lab /run
mkdir -p /run/dhcpcd
shift
exec dhcpcd "$@"`
	return peer{name: name, ns: ns,
		argv: []string{"sh", "-c", script, "dhcpcd-lab", dir,
			"-B", "-4", "-f", "/var/lib/dhcpcd/dhcpcd.conf", "-j", "/var/lib/dhcpcd/dhcpcd.log", HostIf},
		ready: settled(l.now(), 300*time.Millisecond)}, nil
}

// dnsProbe asks server (in ns) for example.test's SOA.
func dnsProbe(ctx context.Context, ns string, server netip.Addr) error {
	c, err := DialContext(ctx, ns, "udp", netip.AddrPortFrom(server, 53).String())
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	co := &dns.Conn{Conn: c}
	m := new(dns.Msg)
	m.SetQuestion("example.test.", dns.TypeSOA)
	if err := co.WriteMsg(m); err != nil {
		return err
	}
	r, err := co.ReadMsg()
	if err != nil {
		return err
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		return fmt.Errorf("SOA example.test @%s: %s", server, dns.RcodeToString[r.Rcode])
	}
	return nil
}

// ntpProbe asks server (from ns) for the time and checks that the answer is
// one a client would synchronise to.
func ntpProbe(ctx context.Context, ns string, server netip.Addr) error {
	timeout := time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	r, err := ntp.QueryWithOptions(netip.AddrPortFrom(server, 123).String(), ntp.QueryOptions{
		Timeout: timeout,
		Dialer: func(_, remote string) (net.Conn, error) {
			return DialContext(ctx, ns, "udp", remote)
		},
	})
	if err != nil {
		return fmt.Errorf("NTP %s: %w", server, err)
	}
	if err := r.Validate(); err != nil {
		return fmt.Errorf("NTP %s: stratum %d: %w", server, r.Stratum, err)
	}
	return nil
}

// keaCommand sends one command to a Kea control socket and checks that the
// result is 0 (success).
func keaCommand(ctx context.Context, socket, command string, args ...map[string]any) error {
	_, err := keaCall(ctx, socket, command, args...)
	return err
}

func keaCall(ctx context.Context, socket, command string, args ...map[string]any) (json.RawMessage, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	req := map[string]any{"command": command}
	if len(args) > 0 {
		req["arguments"] = args[0]
	}
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return nil, err
	}
	var resp struct {
		Result    int             `json:"result"`
		Text      string          `json:"text"`
		Arguments json.RawMessage `json:"arguments"`
	}
	if err := json.NewDecoder(bufio.NewReader(c)).Decode(&resp); err != nil {
		return nil, fmt.Errorf("kea %s: %w", command, err)
	}
	if resp.Result != 0 {
		return nil, fmt.Errorf("kea %s: result %d: %s", command, resp.Result, resp.Text)
	}
	return resp.Arguments, nil
}

// startPeers starts every peer at once and waits until all are ready.
func (l *Lab) startPeers(ctx context.Context) error {
	peers, err := l.peers()
	if err != nil {
		return err
	}
	type result struct {
		p   *process
		err error
	}
	results := make(chan result, len(peers))
	for _, pr := range peers {
		p, err := l.spawn(pr.name, pr.ns, filepath.Join(l.runDir, pr.name+".log"), pr.argv, pr.env...)
		if err != nil {
			return err
		}
		l.addProc(p)
		go func() {
			results <- result{p, waitReady(ctx, p, readyTimeout, pr.ready)}
		}()
	}
	var errs []error
	for range peers {
		r := <-results
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		l.logger.Debug("ready", "proc", r.p.name, "pid", r.p.cmd.Process.Pid)
	}
	return errors.Join(errs...)
}
