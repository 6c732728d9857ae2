package dhcp6pd

import (
	"log/slog"
	"net"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

// benchReply builds a Reply to the harness's current Renew.
func benchReply(b *testing.B, h *harness) []byte {
	ren := h.last(dhcpv6.MessageTypeRenew)
	m := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeReply, TransactionID: ren.TransactionID}
	m.AddOption(dhcpv6.OptClientID(ren.Options.ClientID()))
	m.AddOption(dhcpv6.OptServerID(testServerID))
	m.AddOption(testIAPD())
	m.AddOption(dhcpv6.OptDNS(net.ParseIP("2001:db8:0:1::53")))
	return m.ToBytes()
}

// BenchmarkReplyPath is the client's whole work for a Reply to Renew:
// parse, match, validate (RFC 8415 §21.21/§21.22), accept, persist hook.
func BenchmarkReplyPath(b *testing.B) {
	h := newHarness(&testing.T{})
	h.bindTest()
	h.advance()
	raw := benchReply(b, h)
	h.sent = nil
	h.leases = nil
	// The per-lease log line is wanted in production (once per T1); here
	// it would measure the text handler.
	h.m.log = slog.New(slog.DiscardHandler)
	b.ReportAllocs()
	for b.Loop() {
		// Back into Renew with the same transaction, as at every T1.
		h.m.phase = phaseRenew
		h.m.receive(raw, false, h.now)
		if h.m.phase != phaseBound {
			b.Fatal("Reply not accepted")
		}
		h.leases = h.leases[:0]
	}
}

// BenchmarkReplyParseReference is the reference: insomniacslk/dhcp's
// message parser alone.
func BenchmarkReplyParseReference(b *testing.B) {
	h := newHarness(&testing.T{})
	h.bindTest()
	h.advance()
	raw := benchReply(b, h)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dhcpv6.FromBytes(raw); err != nil {
			b.Fatal(err)
		}
	}
}
