package dhcp6info

import (
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

// BenchmarkRespond is the whole answer to an Information-request: parse,
// validate, build and encode the Reply. BenchmarkParseOnly is the
// reference: the library's parser alone on the same bytes.
func BenchmarkRespond(b *testing.B) {
	req := msg(b, dhcpv6.MessageTypeInformationRequest, dhcpv6.OptClientID(clientDUID),
		dhcpv6.OptRequestedOption(dhcpv6.OptionDNSRecursiveNameServer, dhcpv6.OptionDomainSearchList))
	b.ReportAllocs()
	for b.Loop() {
		rep, reason := respond(req, testPlan, serverDUID)
		if rep == nil {
			b.Fatal(reason)
		}
		rep.ToBytes()
	}
}

func BenchmarkParseOnly(b *testing.B) {
	req := msg(b, dhcpv6.MessageTypeInformationRequest, dhcpv6.OptClientID(clientDUID),
		dhcpv6.OptRequestedOption(dhcpv6.OptionDNSRecursiveNameServer, dhcpv6.OptionDomainSearchList))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dhcpv6.MessageFromBytes(req); err != nil {
			b.Fatal(err)
		}
	}
}
