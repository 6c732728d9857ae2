package roles

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/packetsock"
)

// upstreamFilter is a classic BPF program that lets only the frames
// ParseFrame could find a signal in reach user space: ICMPv6 type 134 (RA),
// UDP from port 547 over IPv6 (DHCPv6 server), unfragmented UDP from port 67
// over IPv4 (DHCPv4 server). A LAN port carries all the LAN's traffic; the
// kernel drops the rest before it is copied. Extension headers are not
// followed: RAs and DHCP replies are sent without them.
var upstreamFilter = []bpf.Instruction{
	/* 0 */ bpf.LoadAbsolute{Off: 12, Size: 2}, // EtherType
	/* 1 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: etherTypeIPv6, SkipFalse: 7}, // → 9
	/* 2 */ bpf.LoadAbsolute{Off: 20, Size: 1}, // IPv6 next header
	/* 3 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: protoICMPv6, SkipFalse: 2}, // → 6
	/* 4 */ bpf.LoadAbsolute{Off: 54, Size: 1}, // ICMPv6 type
	/* 5 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 134, SkipTrue: 11, SkipFalse: 12},
	/* 6 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: protoUDP, SkipFalse: 11},
	/* 7 */ bpf.LoadAbsolute{Off: 54, Size: 2}, // UDP source port
	/* 8 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 547, SkipTrue: 8, SkipFalse: 9},
	/* 9 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: etherTypeIPv4, SkipFalse: 8},
	/* 10 */ bpf.LoadAbsolute{Off: 23, Size: 1}, // IPv4 protocol
	/* 11 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: protoUDP, SkipFalse: 6},
	/* 12 */ bpf.LoadAbsolute{Off: 20, Size: 2}, // MF flag + fragment offset
	/* 13 */ bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x3fff, SkipTrue: 4},
	/* 14 */ bpf.LoadMemShift{Off: 14}, // X = IPv4 header length
	/* 15 */ bpf.LoadIndirect{Off: 14, Size: 2}, // UDP source port
	/* 16 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 67, SkipFalse: 1},
	/* 17 */ bpf.RetConstant{Val: 65535},
	/* 18 */ bpf.RetConstant{Val: 0},
}

// listenUpstream reads the frames port receives from its wire (never those
// the gizmo sends out of it: a bridge port's outgoing copies of the LAN
// services' RAs and DHCP replies are not looked at) and reports the upstream
// signals among them until ctx is done. It works on a port that is
// enslaved to a bridge, where an ordinary socket hears nothing: the packet
// socket taps the port before the bridge takes the frame.
func listenUpstream(ctx context.Context, port string, report func(Upstream)) error {
	ifi, err := net.InterfaceByName(port)
	if err != nil {
		return fmt.Errorf("roles: listen on %s: %w", port, err)
	}
	proto := htons(unix.ETH_P_ALL)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(proto))
	if err != nil {
		return fmt.Errorf("roles: packet socket on %s: %w", port, err)
	}
	f := os.NewFile(uintptr(fd), "packet:"+port) // owns fd from here on
	defer f.Close()
	// The filter goes on before bind, so that no unfiltered frame is queued.
	if err := packetsock.AttachFilter(fd, upstreamFilter); err != nil {
		return fmt.Errorf("roles: attach filter on %s: %w", port, err)
	}
	// Outgoing frames are skipped by the kernel where it can (Linux 4.20)
	// and by the packet type below everywhere.
	unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
		return fmt.Errorf("roles: bind packet socket to %s: %w", port, err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("roles: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { f.Close() })
	defer stop()
	buf := make([]byte, 65536)
	for {
		var n int
		var from unix.Sockaddr
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, from, rerr = unix.Recvfrom(int(fd), buf, 0)
			return !errors.Is(rerr, unix.EAGAIN)
		})
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			err = rerr
		}
		if err != nil {
			return fmt.Errorf("roles: read on %s: %w", port, err)
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok || ll.Ifindex != ifi.Index || ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		u, err := ParseFrame(buf[:n])
		if err != nil {
			continue
		}
		report(u)
	}
}

// htons is the protocol number in network byte order, as AF_PACKET wants.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
