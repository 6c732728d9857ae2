package dns64

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// dialFrom connects to ln from a loopback address.
func dialFrom(t *testing.T, from string, to net.Addr) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", to.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// refusedAtOnce reports whether the server closed c without a word.
func refusedAtOnce(t *testing.T, c net.Conn) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed):
		return true
	case errors.As(err, &ne) && ne.Timeout():
		return false // open: the server holds it
	}
	return err != nil // e.g. a reset
}

// RFC 7766 §6.2.2: a server may limit each client's concurrent TCP
// connections. A client gets maxTCPPerClient, all clients maxTCPConns
// together, and a closed connection makes room again.
func TestFairListenerBoundsConnections(t *testing.T) {
	inner, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Skip(err)
	}
	defer inner.Close()
	var refused atomic.Uint64
	l := newFairListener(inner, func(a netip.Addr) hostKey { return hostKey{addr: a} }, &refused)
	accepted := make(chan net.Conn, 2*maxTCPConns)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	wait := func(want int) []net.Conn {
		t.Helper()
		var got []net.Conn
		for range want {
			select {
			case c := <-accepted:
				got = append(got, c)
			case <-time.After(5 * time.Second):
				t.Fatalf("accepted %d connections, want %d", len(got), want)
			}
		}
		return got
	}

	for range maxTCPPerClient {
		dialFrom(t, "127.0.0.2", inner.Addr())
	}
	server := wait(maxTCPPerClient)
	extra := dialFrom(t, "127.0.0.2", inner.Addr())
	if !refusedAtOnce(t, extra) || refused.Load() != 1 {
		t.Fatalf("connection %d of one client not refused (refused %d)", maxTCPPerClient+1, refused.Load())
	}
	if other := dialFrom(t, "127.0.0.3", inner.Addr()); refusedAtOnce(t, other) {
		t.Fatal("another client refused")
	}
	wait(1)
	server[0].Close()
	server[0].Close() // a second Close gives back nothing more
	again := dialFrom(t, "127.0.0.2", inner.Addr())
	wait(1)
	if refusedAtOnce(t, again) {
		t.Fatal("refused after one of the client's connections closed")
	}

	// All clients together: maxTCPConns.
	open := maxTCPPerClient + 1
	for i := 0; open < maxTCPConns; i++ {
		for range min(maxTCPPerClient, maxTCPConns-open) {
			dialFrom(t, netip.AddrFrom4([4]byte{127, 0, 1, byte(i)}).String(), inner.Addr())
			open++
		}
	}
	wait(maxTCPConns - maxTCPPerClient - 1)
	if c := dialFrom(t, "127.0.0.4", inner.Addr()); !refusedAtOnce(t, c) {
		t.Errorf("connection %d refused no one", maxTCPConns+1)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total != maxTCPConns || len(l.conns) > maxTCPConns {
		t.Errorf("%d connections counted for %d clients", l.total, len(l.conns))
	}
}
