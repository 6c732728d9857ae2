package testns

import (
	"io"
	"net"
	"testing"
)

// ServeTCP listens on addr (network "tcp", "tcp4" or "tcp6") inside
// namespace ns until the test ends, and runs handle on a goroutine of its
// own for each connection it accepts; handle closes the connection. It
// returns the listener's address.
func ServeTCP(t testing.TB, ns, network, addr string, handle func(net.Conn)) net.Addr {
	t.Helper()
	ln := listenIn(t, ns, addr, func() (net.Listener, error) { return net.Listen(network, addr) })
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
	return listenIn(t, ns, network+" "+addr, func() (net.PacketConn, error) { return net.ListenPacket(network, addr) })
}

// listenIn opens a socket with listen inside namespace ns, where it stays,
// and closes it when the test ends; what names it in a failure.
func listenIn[S io.Closer](t testing.TB, ns, what string, listen func() (S, error)) S {
	t.Helper()
	var s S
	if err := Do(ns, func() (err error) {
		s, err = listen()
		return err
	}); err != nil {
		t.Fatalf("listen on %s in %s: %v", what, ns, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
