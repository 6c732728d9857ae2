package testns

import (
	"net"
	"testing"
)

// ServeTCP listens on addr (network "tcp", "tcp4" or "tcp6") inside
// namespace ns until the test ends, and runs handle on a goroutine of its
// own for each connection it accepts; handle closes the connection. It
// returns the listener's address.
func ServeTCP(t testing.TB, ns, network, addr string, handle func(net.Conn)) net.Addr {
	t.Helper()
	var ln net.Listener
	if err := Do(ns, func() (err error) {
		ln, err = net.Listen(network, addr)
		return err
	}); err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return ln.Addr()
}

// ListenPacket opens a packet socket on addr (network "udp", "udp4",
// "udp6", "ip4:udp", ...) inside namespace ns and closes it when the test
// ends.
func ListenPacket(t testing.TB, ns, network, addr string) net.PacketConn {
	t.Helper()
	var pc net.PacketConn
	if err := Do(ns, func() (err error) {
		pc, err = net.ListenPacket(network, addr)
		return err
	}); err != nil {
		t.Fatalf("listen on %s %s in %s: %v", network, addr, ns, err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}
