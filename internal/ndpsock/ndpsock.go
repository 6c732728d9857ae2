// Package ndpsock sets up and reads the ICMPv6 sockets of the services
// that take one kind of Neighbor Discovery message: the socket passes only
// that type, and each message comes with the hop limit it arrived with,
// which RFC 4861 §6.1 checks (255: no router forwarded it), and the
// interface it arrived on.
package ndpsock

import (
	"fmt"
	"net/netip"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

// Accept makes c pass only ICMPv6 messages of type typ, each read with
// its hop limit and interface.
func Accept(c *ndp.Conn, typ ipv6.ICMPType) error {
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(typ)
	if err := c.SetICMPFilter(&f); err != nil {
		return fmt.Errorf("icmp filter: %w", err)
	}
	if err := c.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagInterface, true); err != nil {
		return fmt.Errorf("control messages: %w", err)
	}
	return nil
}

// Message is one ICMPv6 message as read from the socket.
type Message struct {
	// Bytes is the message, from its ICMPv6 header on; it shares the
	// buffer given to Read.
	Bytes []byte
	Src   netip.Addr
	// HopLimit is the IPv6 hop limit it arrived with, -1 when the socket
	// did not report one; IfIndex is the interface it arrived on, 0 when
	// not reported.
	HopLimit, IfIndex int
}

// Read reads the next message into b.
func Read(c *ndp.Conn, b []byte) (Message, error) {
	n, cm, src, err := c.ReadRaw(b)
	if err != nil {
		return Message{}, err
	}
	m := Message{Bytes: b[:n], Src: src, HopLimit: -1}
	if cm != nil {
		m.HopLimit, m.IfIndex = cm.HopLimit, cm.IfIndex
	}
	return m, nil
}
