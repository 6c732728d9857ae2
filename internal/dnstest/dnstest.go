// Package dnstest serves DNS on loopback for tests: a resolver under test
// asks a handler the test wrote, as it would ask an ISP's resolver.
package dnstest

import (
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// ServeUDP answers DNS over UDP on 127.0.0.1 with h until the test ends,
// and returns the address it answers on. It returns once the server is
// ready for queries.
func ServeUDP(t testing.TB, h dns.HandlerFunc) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: func() { close(started) }}
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}
