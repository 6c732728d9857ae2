// Package sockopt sets the options the gizmo's sockets need: before they
// bind or dial, through a net.ListenConfig's or net.Dialer's Control, or
// on a socket already open, with Set.
package sockopt

import (
	"errors"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Option sets one option on the socket fd, which Go opened for network
// ("udp4", "tcp6", "ip6", ...: the family is the network's last digit).
type Option func(fd int, network string) error

// Control is a net.ListenConfig Control that sets opts in order and
// stops at the first that fails.
func Control(opts ...Option) func(network, address string, c syscall.RawConn) error {
	return func(network, _ string, c syscall.RawConn) error {
		return Set(c, network, opts...)
	}
}

// Set sets opts in order on the socket c, opened for network, and stops
// at the first that fails.
func Set(c syscall.RawConn, network string, opts ...Option) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		for _, o := range opts {
			if serr = o(int(fd), network); serr != nil {
				return
			}
		}
	})
	return errors.Join(err, serr)
}

// Freebind sets IP_FREEBIND, or IPV6_FREEBIND on an IPv6 socket, so that
// the socket may bind an address that is still tentative (DAD) or not
// assigned yet, or send from one that is not configured (a raw socket).
func Freebind(fd int, network string) error {
	if strings.HasSuffix(network, "6") {
		return unix.SetsockoptInt(fd, unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
	}
	return unix.SetsockoptInt(fd, unix.SOL_IP, unix.IP_FREEBIND, 1)
}

// ReuseAddr sets SO_REUSEADDR, so that a listener started over binds its
// port while the old one's connections linger.
func ReuseAddr(fd int, _ string) error {
	return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
}

// BindToDevice keeps the socket to interface ifname (SO_BINDTODEVICE);
// an empty name leaves it unbound.
func BindToDevice(ifname string) Option {
	return func(fd int, _ string) error {
		if ifname == "" {
			return nil
		}
		return unix.BindToDevice(fd, ifname)
	}
}

// ReceiveBuffer sets the receive buffer to bytes: SO_RCVBUFFORCE, past the
// rmem_max limit, where the process has CAP_NET_ADMIN (the gizmo has),
// else SO_RCVBUF, which the kernel caps at rmem_max.
func ReceiveBuffer(bytes int) Option {
	return func(fd int, _ string) error {
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, bytes) == nil {
			return nil
		}
		return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, bytes)
	}
}

// SendBufferForce sets the send buffer to bytes (SO_SNDBUFFORCE), past the
// wmem_max limit that SO_SNDBUF stops at; it needs CAP_NET_ADMIN.
func SendBufferForce(bytes int) Option {
	return func(fd int, _ string) error {
		return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, bytes)
	}
}
