// Package packetsock opens the packet sockets the services read link-layer
// traffic with: bound to one interface, with a classic BPF filter in place
// before the first packet is queued (so that the LAN's bulk traffic stays
// in the kernel), and the socket options they share.
package packetsock

import (
	"errors"
	"fmt"
	"net"
	"unsafe"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Listen opens a packet socket for protocol (an ETH_P_* number) on ifi
// with filter attached. typ packet.Raw reads frames with their Ethernet
// header, packet.Datagram without.
func Listen(ifi *net.Interface, typ packet.Type, protocol int, filter []bpf.Instruction) (*packet.Conn, error) {
	raw, err := bpf.Assemble(filter)
	if err != nil {
		return nil, fmt.Errorf("assemble filter: %w", err)
	}
	c, err := packet.Listen(ifi, typ, protocol, &packet.Config{Filter: raw})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", ifi.Name, err)
	}
	return c, nil
}

// AllMulticast has c receive every multicast group on ifi for the
// socket's lifetime (PACKET_MR_ALLMULTI), for messages to groups the host
// has not joined, such as another node's solicited-node group (RFC 4861
// §7.2.2). The kernel drops the membership when the socket closes, even
// after a crash. On an error c is closed.
func AllMulticast(c *packet.Conn, ifi *net.Interface) error {
	sc, err := c.SyscallConn()
	if err != nil {
		c.Close()
		return fmt.Errorf("%s: %w", ifi.Name, err)
	}
	var serr error
	err = sc.Control(func(fd uintptr) {
		mreq := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_ALLMULTI}
		serr = unix.SetsockoptPacketMreq(int(fd), unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq)
	})
	if err = errors.Join(err, serr); err != nil {
		c.Close()
		return fmt.Errorf("all-multicast on %s: %w", ifi.Name, err)
	}
	return nil
}

// ForceReadBuffer sets c's receive buffer to bytes beyond
// net.core.rmem_max (SO_RCVBUFFORCE), room for a burst. It needs
// CAP_NET_ADMIN, which the gizmo has; without it the default stays, and
// the services count what does not fit.
func ForceReadBuffer(c *packet.Conn, bytes int) {
	if sc, err := c.SyscallConn(); err == nil {
		sc.Control(func(fd uintptr) {
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, bytes)
		})
	}
}

// AttachFilter puts the classic BPF program prog on socket fd
// (SO_ATTACH_FILTER), for sockets that packet.Listen does not open.
func AttachFilter(fd int, prog []bpf.Instruction) error {
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return fmt.Errorf("assemble filter: %w", err)
	}
	f := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		f[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(f)), Filter: unsafe.SliceData(f)}
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog)
}
