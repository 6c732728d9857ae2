package dhcp4

import (
	"log/slog"
	"net"
	"syscall"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/net/ipv4"

	"codeberg.org/monostack/gizmo/internal/sockopt"
)

// batch is how many datagrams one system call moves at most. A storm fills
// it; a quiet network moves one at a time with no extra delay.
const batch = 32

// packetIO reads and writes datagrams in batches (recvmmsg/sendmmsg) when
// the socket is a UDP socket, and one at a time otherwise. A storm of
// requests then costs a few system calls per batch instead of two per
// packet, which is where most of a DHCP server's time goes.
type packetIO struct {
	conn net.PacketConn
	pc   *ipv4.PacketConn // nil: no batching
}

func newPacketIO(conn net.PacketConn) *packetIO {
	p := &packetIO{conn: conn}
	if uc, ok := conn.(*net.UDPConn); ok {
		p.pc = ipv4.NewPacketConn(uc)
	}
	return p
}

func newMessages(n int) []ipv4.Message {
	ms := make([]ipv4.Message, n)
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, 2048)}
	}
	return ms
}

// read fills ms[:n] with at least one datagram.
func (p *packetIO) read(ms []ipv4.Message) (int, error) {
	if p.pc != nil {
		return p.pc.ReadBatch(ms, 0)
	}
	n, addr, err := p.conn.ReadFrom(ms[0].Buffers[0])
	ms[0].N, ms[0].Addr = n, addr
	if err != nil {
		return 0, err
	}
	return 1, nil
}

// send writes every reply to its RFC 2131 §4.1 destination. It returns the
// first error; a reply that cannot be sent is skipped, not retried (the
// client retransmits).
func (p *packetIO) send(replies []*dhcpv4.DHCPv4) error {
	ms := make([]ipv4.Message, len(replies))
	for i, r := range replies {
		ms[i] = ipv4.Message{Buffers: [][]byte{r.ToBytes()}, Addr: destination(r)}
	}
	var first error
	for len(ms) > 0 {
		if p.pc == nil {
			if _, err := p.conn.WriteTo(ms[0].Buffers[0], ms[0].Addr); err != nil && first == nil {
				first = err
			}
			ms = ms[1:]
			continue
		}
		n, err := p.pc.WriteBatch(ms, 0)
		if err != nil {
			if first == nil {
				first = err
			}
			n++ // skip the one that failed
		}
		ms = ms[min(n, len(ms)):]
	}
	return first
}

// readBuffer holds a burst of a few thousand requests (a switch coming back
// after a power cut); the kernel's default of ~200 KB holds a few hundred,
// and what does not fit is lost until the clients retransmit seconds later.
const readBuffer = 4 << 20

func growReadBuffer(conn net.PacketConn, log *slog.Logger) {
	sc, ok := conn.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	if serr := sockopt.Set(rc, "udp4", sockopt.ReceiveBuffer(readBuffer)); serr != nil {
		log.Debug("dhcp4: cannot grow the socket's receive buffer", "err", serr)
	}
}
