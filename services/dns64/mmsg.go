package dns64

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsgConn reads a batch of datagrams with one recvmmsg(2) and sends the
// answers with one sendmmsg(2), on buffers, iovecs and socket addresses
// allocated once. Each answer goes to the raw socket address its query came
// from, unconverted (with its IPv6 scope, for link-local clients), so a query
// answered from the memo costs no allocation and no address conversion.
type mmsgConn struct {
	rc    syscall.RawConn
	in    []unix.Mmsghdr
	inIov []unix.Iovec
	names []unix.RawSockaddrInet6 // large enough for IPv4 too
	bufs  [][]byte

	out    []unix.Mmsghdr
	outIov []unix.Iovec

	// The callbacks rc.Read and rc.Write run, bound once, and what they
	// leave behind: a closure made per call escapes to the heap, three
	// allocations per batch, a garbage collection every few seconds at a
	// moderate query rate with nothing else allocating.
	recvFn, sendFn func(fd uintptr) bool
	n              int
	errno          syscall.Errno
	sent           int  // of out, before this sendmmsg
	noWait         bool // read returns 0 rather than wait for a datagram
}

func newMmsgConn(c *net.UDPConn, batch, size int) (*mmsgConn, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("dns64: udp raw conn: %w", err)
	}
	m := &mmsgConn{
		rc:     rc,
		in:     make([]unix.Mmsghdr, batch),
		inIov:  make([]unix.Iovec, batch),
		names:  make([]unix.RawSockaddrInet6, batch),
		bufs:   make([][]byte, batch),
		out:    make([]unix.Mmsghdr, 0, batch),
		outIov: make([]unix.Iovec, batch),
	}
	m.recvFn, m.sendFn = m.recv, m.send
	for i := range m.in {
		m.bufs[i] = make([]byte, size)
		m.inIov[i].Base = &m.bufs[i][0]
		m.inIov[i].SetLen(size)
		m.in[i].Hdr.Iov = &m.inIov[i]
		m.in[i].Hdr.SetIovlen(1)
		m.in[i].Hdr.Name = (*byte)(unsafe.Pointer(&m.names[i]))
	}
	return m, nil
}

// read waits for datagrams and returns how many the batch holds; with wait
// false it returns 0 at once when there are none.
//
// Both calls here are made with RawSyscall6 and MSG_DONTWAIT: they never
// block (an empty queue or a full send buffer is EAGAIN, and the goroutine
// then waits in the netpoller as before), so they need not tell the
// scheduler they enter a system call. Syscall6 would: and when the process
// had been idle (every P idle, the runtime's sysmon thread asleep), every
// system call entry wakes sysmon, which then polls every 20 µs for a while.
// At a moderate query rate (10,000 qps) that was one extra thread wake-up
// per query, sysmon alone using 14 % of a core, and a third runnable thread
// on a two-core router competing with the one answering (docs/performance.md,
// "DNS64": the p99 latency).
func (m *mmsgConn) read(wait bool) (int, error) {
	for i := range m.in {
		m.in[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		m.in[i].Hdr.Flags = 0
	}
	m.noWait = !wait
	if err := m.rc.Read(m.recvFn); err != nil {
		return 0, err
	}
	if m.errno != 0 {
		return 0, fmt.Errorf("recvmmsg: %w", m.errno)
	}
	return m.n, nil
}

func (m *mmsgConn) recv(fd uintptr) bool {
	r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&m.in[0])), uintptr(len(m.in)), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EINTR || e == unix.EAGAIN && !m.noWait {
		return false // wait until the socket is readable
	}
	if e == unix.EAGAIN {
		m.n, m.errno = 0, 0
		return true
	}
	m.n, m.errno = int(r), e
	return true
}

func (m *mmsgConn) send(fd uintptr) bool {
	r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&m.out[m.sent])), uintptr(len(m.out)-m.sent), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false // wait until the socket is writable
	}
	m.n, m.errno = int(r), e
	return true
}

// datagram returns the i-th datagram of the batch and its source, ok false
// when the source is not an IP socket address. A datagram longer than the
// buffer comes cut to its size, and fails to parse.
func (m *mmsgConn) datagram(i int) (wire []byte, from netip.AddrPort, ok bool) {
	h := &m.in[i]
	sa := &m.names[i]
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
	switch {
	case sa.Family == unix.AF_INET && h.Hdr.Namelen >= unix.SizeofSockaddrInet4:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		from = netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	case sa.Family == unix.AF_INET6 && h.Hdr.Namelen >= unix.SizeofSockaddrInet6:
		// The client's identity is its address without the scope (policy
		// and statistics know addresses, not interfaces); the answer goes
		// back to the raw address, scope included.
		from = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), port)
	default:
		return nil, from, false
	}
	return m.bufs[i][:min(int(h.Len), len(m.bufs[i]))], from, true
}

// source returns the raw socket address the i-th datagram came from.
func (m *mmsgConn) source(i int) (*unix.RawSockaddrInet6, uint32) {
	return &m.names[i], m.in[i].Hdr.Namelen
}

// scope returns the IPv6 scope (interface index) of a raw source address,
// 0 for none.
func scope(name *unix.RawSockaddrInet6) uint32 {
	if name.Family != unix.AF_INET6 {
		return 0
	}
	return name.Scope_id
}

// queue adds resp, an answer to a query from the raw address name, to the
// answers to send. resp and name must stay untouched until flush.
func (m *mmsgConn) queue(name *unix.RawSockaddrInet6, namelen uint32, resp []byte) {
	j := len(m.out)
	m.outIov[j].Base = &resp[0]
	m.outIov[j].SetLen(len(resp))
	var h unix.Mmsghdr
	h.Hdr.Name = (*byte)(unsafe.Pointer(name))
	h.Hdr.Namelen = namelen
	h.Hdr.Iov = &m.outIov[j]
	h.Hdr.SetIovlen(1)
	m.out = append(m.out, h)
}

// flush sends the queued answers. An answer the kernel refuses (say, a
// firewall verdict for one client) is skipped, not the rest of the batch;
// the first such error is returned.
func (m *mmsgConn) flush() error {
	var first error
	for m.sent = 0; m.sent < len(m.out); {
		if err := m.rc.Write(m.sendFn); err != nil {
			m.out = m.out[:0]
			return err
		}
		n := m.n
		if m.errno != 0 {
			if first == nil {
				first = fmt.Errorf("sendmmsg: %w", m.errno)
			}
			n = 1 // sendmmsg fails only for the first message it could not send
		}
		m.sent += max(n, 1)
	}
	m.out = m.out[:0]
	return first
}
