package sockopt

import (
	"context"
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// Freebind lets a socket bind an address no interface has, in either
// family; without it the bind fails (the kernel's ip_nonlocal_bind is
// off by default).
func TestFreebindBindsAnAddressNotAssigned(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{
		{"udp4", "192.0.2.77:0"},
		{"udp6", "[2001:db8::77]:0"},
	} {
		t.Run(tc.network, func(t *testing.T) {
			if c, err := (&net.ListenConfig{}).ListenPacket(context.Background(), tc.network, tc.addr); err == nil {
				c.Close()
				t.Skip("this machine binds non-local addresses without IP_FREEBIND")
			}
			lc := net.ListenConfig{Control: Control(ReuseAddr, Freebind)}
			c, err := lc.ListenPacket(context.Background(), tc.network, tc.addr)
			if err != nil {
				t.Fatalf("with Freebind: %v", err)
			}
			c.Close()
		})
	}
}

// Control stops at the first option that fails and returns its error.
func TestControlStopsAtTheFirstFailure(t *testing.T) {
	var later bool
	lc := net.ListenConfig{Control: Control(
		func(int, string) error { return unix.EPERM },
		func(int, string) error { later = true; return nil },
	)}
	_, err := lc.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
	if err == nil || later {
		t.Errorf("ListenPacket = %v, later option ran %v; want EPERM and no later option", err, later)
	}
}

// SendBufferForce and ReceiveBuffer set a buffer past wmem_max and
// rmem_max (with CAP_NET_ADMIN); the kernel reports twice the size asked
// for (socket(7), SO_SNDBUF).
func TestBuffersPassTheSysctlLimits(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SO_SNDBUFFORCE and SO_RCVBUFFORCE need CAP_NET_ADMIN")
	}
	const want = 16 << 20
	for _, c := range []struct {
		name string
		set  Option
		opt  int
	}{
		{"SendBufferForce", SendBufferForce(want), unix.SO_SNDBUF},
		{"ReceiveBuffer", ReceiveBuffer(want), unix.SO_RCVBUF},
	} {
		var got int
		read := func(fd int, _ string) (err error) {
			got, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, c.opt)
			return err
		}
		lc := net.ListenConfig{Control: Control(c.set, read)}
		conn, err := lc.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conn.Close()
		if got != 2*want {
			t.Errorf("%s: buffer %d, want %d", c.name, got, 2*want)
		}
	}
}
