package dhcp4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/packetsock"
)

// LAN are the server's sockets on the LAN interface. Requests are read
// from packet sockets, which keep the Ethernet header: an unrelayed
// client's chaddr must be the Ethernet source of its frames (a UDP socket
// has no way to tell; there is no control message for the link layer),
// and the frame's port is what the rate limit counts by. On a bridge (the
// appliance's lan0) there is one socket per bridge port, bound to the
// port, so that the port a frame came in on is known: the bridge's own
// socket would only say lan0. Replies go out through a UDP socket bound
// to the interface, which also keeps the port open (no ICMP unreachable
// for unicast renewals) but reads nothing: a filter drops every datagram
// before it is queued.
type LAN struct {
	udp    *net.UDPConn
	frames []frameSocket
}

// frameSocket is a packet socket and the ifindex of the port it is bound
// to.
type frameSocket struct {
	c    *packet.Conn
	port int
}

// ListenLAN opens the server's sockets on the interface ifname.
func ListenLAN(ifname string) (*LAN, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("dhcp4: %w", err)
	}
	udp, err := server4.NewIPv4UDPConn(ifname, &net.UDPAddr{Port: dhcpv4.ServerPort})
	if err != nil {
		return nil, fmt.Errorf("dhcp4: listen on %s: %w", ifname, err)
	}
	l := &LAN{udp: udp}
	if err := attachFilter(udp, []bpf.Instruction{bpf.RetConstant{Val: 0}}); err != nil {
		l.Close()
		return nil, err
	}
	ports, err := bridgePorts(ifi)
	if err != nil {
		l.Close()
		return nil, err
	}
	for _, p := range ports {
		c, err := listenRequests(p, p.Index != ifi.Index)
		if err != nil {
			l.Close()
			return nil, err
		}
		l.frames = append(l.frames, frameSocket{c: c, port: p.Index})
	}
	return l, nil
}

// Close closes every socket.
func (l *LAN) Close() error {
	errs := []error{l.udp.Close()}
	for _, f := range l.frames {
		errs = append(errs, f.c.Close())
	}
	return errors.Join(errs...)
}

// drops returns how many frames the kernel dropped since the last call
// because a socket's queue was full (PACKET_STATISTICS, which resets).
func (l *LAN) drops() uint64 {
	var n uint64
	for _, f := range l.frames {
		if st, err := f.c.Stats(); err == nil {
			n += uint64(st.Drops)
		}
	}
	return n
}

// bridgePorts are the ports of ifi if it is a bridge, else ifi itself.
// Netlink, not /sys, is asked: sysfs shows the namespace it was mounted
// in, not necessarily the caller's.
func bridgePorts(ifi *net.Interface) (ports []*net.Interface, err error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("dhcp4: list links: %w", err)
	}
	isBridge := slices.ContainsFunc(links, func(l netlink.Link) bool {
		_, br := l.(*netlink.Bridge)
		return br && l.Attrs().Index == ifi.Index
	})
	if !isBridge {
		return []*net.Interface{ifi}, nil
	}
	defer func() {
		if len(ports) == 0 && err == nil {
			err = fmt.Errorf("dhcp4: bridge %s has no ports yet", ifi.Name)
		}
	}()
	for _, l := range links {
		if a := l.Attrs(); a.MasterIndex == ifi.Index {
			ports = append(ports, &net.Interface{Index: a.Index, Name: a.Name, HardwareAddr: a.HardwareAddr, MTU: a.MTU})
		}
	}
	return ports, nil
}

// requestFilter passes IPv4 UDP datagrams to port 67 that are not
// fragments, except the gizmo's own (outgoing, looped back). The IP header
// length is read from the packet (BPF's "ldx 4*([14]&0xf)").
var requestFilter = []bpf.Instruction{
	bpf.LoadExtension{Num: bpf.ExtType},                                  // 0: A = pkttype
	bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: 4, SkipTrue: 9},        // 1: outgoing, loopback → 11
	bpf.LoadAbsolute{Off: 12, Size: 2},                                   // 2: EtherType
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: etherTypeIPv4, SkipTrue: 7},  // 3: not IPv4 → 11
	bpf.LoadAbsolute{Off: ethHeaderLen + 9, Size: 1},                     // 4: protocol
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: protoUDP, SkipTrue: 5},       // 5: not UDP → 11
	bpf.LoadAbsolute{Off: ethHeaderLen + 6, Size: 2},                     // 6: flags, fragment offset
	bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x3fff, SkipTrue: 3},          // 7: a fragment → 11
	bpf.LoadMemShift{Off: ethHeaderLen},                                  // 8: X = IP header length
	bpf.LoadIndirect{Off: ethHeaderLen + 2, Size: 2},                     // 9: UDP destination port
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: dhcpv4.ServerPort, SkipTrue: 1}, // 10: 67 → 12
	bpf.RetConstant{Val: 0},                                              // 11: drop
	bpf.RetConstant{Val: frameSnap},                                      // 12: pass
}

// frameSnap holds a full-size frame; DHCP messages are smaller.
const frameSnap = 2048

// listenRequests opens a packet socket for DHCP requests on one port. On
// a bridge port only an ETH_P_ALL socket sees frames, before the bridge
// takes them; PACKET_IGNORE_OUTGOING keeps the frames the port sends off
// the socket, so that forwarding pays nothing for it. Elsewhere an
// ETH_P_IP socket sees only IPv4.
func listenRequests(ifi *net.Interface, bridgePort bool) (*packet.Conn, error) {
	proto := unix.ETH_P_IP
	if bridgePort {
		proto = unix.ETH_P_ALL
	}
	c, err := packetsock.Listen(ifi, packet.Raw, proto, requestFilter)
	if err != nil {
		return nil, fmt.Errorf("dhcp4: %w", err)
	}
	// Both options are best effort: without PACKET_IGNORE_OUTGOING (Linux
	// 4.20) the filter drops the outgoing frames instead; without the
	// auxdata every checksum is checked.
	if sc, err := c.SyscallConn(); err == nil {
		sc.Control(func(fd uintptr) {
			unix.SetsockoptInt(int(fd), unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
			unix.SetsockoptInt(int(fd), unix.SOL_PACKET, unix.PACKET_AUXDATA, 1)
		})
	}
	return c, nil
}

// readFrame reads one frame and reports whether its checksums are still
// to be filled in (TP_STATUS_CSUMNOTREADY: sent from this host with the
// checksum left to hardware, as through a veth), from PACKET_AUXDATA.
func (f frameSocket) readFrame(b, oob []byte) (n int, csumPending bool, err error) {
	sc, err := f.c.SyscallConn()
	if err != nil {
		return 0, false, err
	}
	var oobn int
	var rerr error
	err = sc.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), b, oob, unix.MSG_DONTWAIT)
		return !errors.Is(rerr, unix.EAGAIN)
	})
	if err = errors.Join(err, rerr); err != nil {
		return 0, false, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return n, false, nil
	}
	for _, m := range msgs {
		// struct tpacket_auxdata begins with its __u32 tp_status.
		if m.Header.Level == unix.SOL_PACKET && m.Header.Type == unix.PACKET_AUXDATA && len(m.Data) >= 4 {
			csumPending = binary.NativeEndian.Uint32(m.Data[:4])&unix.TP_STATUS_CSUMNOTREADY != 0
		}
	}
	return n, csumPending, nil
}

// attachFilter puts a classic BPF program on a socket (SO_ATTACH_FILTER).
func attachFilter(c *net.UDPConn, prog []bpf.Instruction) error {
	sc, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("dhcp4: %w", err)
	}
	var serr error
	err = sc.Control(func(fd uintptr) { serr = packetsock.AttachFilter(int(fd), prog) })
	if err = errors.Join(err, serr); err != nil {
		return fmt.Errorf("dhcp4: filter on the reply socket: %w", err)
	}
	return nil
}
