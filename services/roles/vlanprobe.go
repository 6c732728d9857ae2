package roles

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"time"
	"unsafe"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/packetsock"
)

// CommonVLANs are the 802.1Q VLAN IDs on which ISPs commonly deliver their
// service, probed when a port hears no upstream untagged. The list is
// short because every ID costs frames on every port, and ordered by how
// widely the ID is used: when several VLANs of one port answer equally,
// the earlier one wins. 7 is Deutsche Telekom's and that of the networks
// that resell its lines; 6 KPN's (Netherlands) and Movistar's (Spain); 10
// that of New Zealand's UFB fibre networks; 35 Bell Canada's; 101
// Openreach's FTTC lines in the UK; 832 Orange France's; 100 and 201 are
// used by several fibre ISPs. Some of these ISPs run PPPoE on the VLAN,
// which the gizmo does not speak: there the probe hears nothing.
var CommonVLANs = []uint16{7, 6, 10, 35, 100, 101, 201, 832}

// ProbeFunc finds out what one port hears within timeout. Probe is the
// untagged one; VLANProbe makes those that look on VLANs too.
type ProbeFunc func(ctx context.Context, port string, timeout time.Duration, log *slog.Logger) Evidence

// VLANProbe returns the probe for a WAN VLAN setting. With vid 0 (no VLAN
// set) a port is probed untagged and, when that hears no upstream server,
// on each of CommonVLANs at once (ChooseVLAN picks): at most twice the
// timeout per port. With a VLAN ID the port is probed on that VLAN only:
// the owner said where the service is, and an untagged upstream (another
// router on a LAN port) must not win the WAN role.
func VLANProbe(vid uint16) ProbeFunc {
	if vid != 0 {
		return func(ctx context.Context, port string, timeout time.Duration, log *slog.Logger) Evidence {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			if !upWithCarrier(ctx, port) {
				return Evidence{Port: port, VLAN: vid}
			}
			tagged, err := ProbeVLANs(ctx, port, []uint16{vid}, log)
			if err != nil {
				log.Warn("probe: cannot probe the VLAN", "port", port, "vlan", vid, "err", err)
				return Evidence{Port: port, LinkUp: true, VLAN: vid}
			}
			return tagged[0]
		}
	}
	return func(ctx context.Context, port string, timeout time.Duration, log *slog.Logger) Evidence {
		ev := Probe(ctx, port, timeout, log)
		if !ev.LinkUp || score(ev) >= 2 {
			return ev
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		tagged, err := ProbeVLANs(ctx, port, CommonVLANs, log)
		if err != nil {
			log.Warn("probe: cannot probe the common ISP VLANs", "port", port, "err", err)
			return ev
		}
		chosen := ChooseVLAN(ev, tagged)
		if chosen.VLAN != 0 {
			log.Info("probe: the port hears an upstream on a VLAN", "port", port, "vlan", chosen.VLAN, "heard", chosen.Heard())
		}
		return chosen
	}
}

// ChooseVLAN decides what a port heard from its untagged probe and its
// probes on VLANs (in the order they were asked for). An upstream heard
// untagged wins: most ISPs deliver untagged, and the VLANs are only asked
// when nothing was. Otherwise the VLAN that heard the strongest upstream
// (a default router before a DHCP server alone) wins, the earlier one on a
// tie. An RA without a default route on a VLAN is no upstream (score 1),
// like untagged. With no upstream on any VLAN, the untagged evidence
// stands.
func ChooseVLAN(untagged Evidence, tagged []Evidence) Evidence {
	if score(untagged) >= 2 {
		return untagged
	}
	best := -1
	for i, e := range tagged {
		if e.VLAN == 0 || !e.LinkUp {
			continue
		}
		if best < 0 || score(e) > score(tagged[best]) {
			best = i
		}
	}
	if best < 0 || score(tagged[best]) < 2 {
		return untagged
	}
	e := tagged[best]
	e.Port = untagged.Port
	return e
}

// upWithCarrier brings port up and waits for its carrier until ctx is
// done.
func upWithCarrier(ctx context.Context, port string) bool {
	if l, err := netlink.LinkByName(port); err == nil {
		netlink.LinkSetUp(l)
	}
	return awaitCarrier(ctx, port)
}

// vlanUpstreamFilter is upstreamFilter for tagged frames only: the kernel
// has moved the tag out of the frame into its metadata by the time a
// packet socket sees it (skb_vlan_untag), so the offsets are those of an
// untagged frame, and the tag's presence is an ancillary load.
var vlanUpstreamFilter = append([]bpf.Instruction{
	bpf.LoadExtension{Num: bpf.ExtVLANTagPresent},
	// Untagged: to upstreamFilter's last instruction, which drops.
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0, SkipTrue: uint8(len(upstreamFilter) - 1)},
}, upstreamFilter...)

// ProbeVLANs sends a Router Solicitation and a DHCPv4 DISCOVER on each of
// vids out of port, three times a second apart (RFC 4861 §6.3.7 allows
// MAX_RTR_SOLICITATIONS), and reports what each VLAN heard until ctx is
// done: one Evidence per VID, in the order of vids. The frames are written
// and read whole on one packet socket, which holds the port promiscuous
// while it is open: a NIC with a VLAN filter (igb, qemu's virtio-net)
// drops the frames of VLANs no VLAN device registered. Closing the socket
// undoes both; the probe leaves nothing behind.
func ProbeVLANs(ctx context.Context, port string, vids []uint16, log *slog.Logger) ([]Evidence, error) {
	ifi, err := net.InterfaceByName(port)
	if err != nil {
		return nil, fmt.Errorf("roles: VLAN probe on %s: %w", port, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("roles: VLAN probe on %s: not an Ethernet port", port)
	}
	evidence := make([]Evidence, len(vids))
	index := map[uint16]int{}
	for i, v := range vids {
		if v < 1 || v > 4094 {
			return nil, fmt.Errorf("roles: VLAN probe on %s: VLAN ID %d is outside 1..4094", port, v)
		}
		evidence[i] = Evidence{Port: port, LinkUp: true, VLAN: v}
		index[v] = i
	}
	f, err := vlanSocket(ifi)
	if err != nil {
		return nil, fmt.Errorf("roles: VLAN probe on %s: %w", port, err)
	}
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("roles: VLAN probe on %s: %w", port, err)
	}
	var frames [][]byte
	xid := dhcpv4.TransactionID{}
	copy(xid[:], ifi.HardwareAddr[2:]) // distinct per port; replies are matched by VLAN, not by xid
	for _, v := range vids {
		rs, err := solicitationFrame(ifi.HardwareAddr, v)
		if err != nil {
			return nil, err
		}
		discover, err := discoverFrame(ifi.HardwareAddr, v, xid)
		if err != nil {
			return nil, err
		}
		frames = append(frames, rs, discover)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		to := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
		for round := 0; round < 3; round++ {
			for _, fr := range frames {
				var serr error
				rc.Write(func(fd uintptr) bool {
					serr = unix.Sendto(int(fd), fr, 0, to)
					return !errors.Is(serr, unix.EAGAIN)
				})
				if serr != nil {
					log.Debug("probe: send on VLAN", "port", port, "err", serr)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}()
	stop := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Now()) })
	defer stop()
	buf, oob := make([]byte, 65536), make([]byte, 256)
	for ctx.Err() == nil {
		var n, oobn int
		var from unix.Sockaddr
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, oobn, _, from, rerr = unix.Recvmsg(int(fd), buf, oob, 0)
			return !errors.Is(rerr, unix.EAGAIN)
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			if ctx.Err() == nil {
				log.Debug("probe: read on VLAN", "port", port, "err", err)
			}
			break
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok || ll.Ifindex != ifi.Index || ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		vid, ok := vlanOf(oob[:oobn])
		i, asked := index[vid]
		if !ok || !asked {
			continue
		}
		u, err := ParseFrame(buf[:n])
		if err != nil || slices.Equal(u.SrcMAC, ifi.HardwareAddr) {
			continue
		}
		e := &evidence[i]
		switch u.Signal {
		case SignalRouter:
			e.RouterAdvertisement, e.AnyRouterAdvertisement = true, true
		case SignalRouterNoDefault:
			e.AnyRouterAdvertisement = true
		case SignalDHCPv4Server:
			e.DHCPv4Server = true
		case SignalDHCPv6Server:
			e.DHCPv6Server = true
		}
	}
	cancel()
	<-sent
	return evidence, nil
}

// vlanSocket opens the VLAN probe's packet socket on ifi: every protocol,
// only tagged upstream replies past the kernel filter, the tag reported in
// PACKET_AUXDATA, and the port promiscuous while it is open.
func vlanSocket(ifi *net.Interface) (*os.File, error) {
	proto := htons(unix.ETH_P_ALL)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(proto))
	if err != nil {
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), "vlanprobe:"+ifi.Name) // owns fd from here on
	mreq := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}
	for _, err := range []error{
		packetsock.AttachFilter(fd, vlanUpstreamFilter),
		unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1),
		unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}),
		unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq),
	} {
		if err != nil {
			f.Close()
			return nil, err
		}
	}
	// Our own frames are skipped by the kernel where it can (Linux 4.20)
	// and by the packet type everywhere.
	unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
	return f, nil
}

// vlanOf reads the VLAN ID of a received frame from its PACKET_AUXDATA
// control message.
func vlanOf(oob []byte) (uint16, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_PACKET || m.Header.Type != unix.PACKET_AUXDATA || len(m.Data) < int(unsafe.Sizeof(unix.TpacketAuxdata{})) {
			continue
		}
		aux := (*unix.TpacketAuxdata)(unsafe.Pointer(&m.Data[0]))
		if aux.Status&unix.TP_STATUS_VLAN_VALID == 0 || (aux.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 && aux.Vlan_tpid != etherType8021Q) {
			return 0, false
		}
		return aux.Vlan_tci & 0x0fff, true
	}
	return 0, false
}
