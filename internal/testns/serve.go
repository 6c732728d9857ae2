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
