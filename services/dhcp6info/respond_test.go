package dhcp6info

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

var (
	serverDUID = &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{0x02, 0, 0x5e, 0, 0x53, 0x01}}
	otherDUID  = &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{0x02, 0, 0x5e, 0, 0x53, 0x99}}
	clientDUID = &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{0x02, 0, 0, 0, 0x12, 0x34}}
	testPlan   = Plan{
		Enabled:                true,
		DNS:                    []netip.Addr{netip.MustParseAddr("fd12:3456:789a::35")},
		DomainSearch:           []string{"home.arpa"},
		InformationRefreshTime: time.Hour,
	}
	txid = dhcpv6.TransactionID{0xab, 0xcd, 0xef}
)

func msg(t testing.TB, typ dhcpv6.MessageType, opts ...dhcpv6.Option) []byte {
	t.Helper()
	m := &dhcpv6.Message{MessageType: typ, TransactionID: txid}
	for _, o := range opts {
		m.AddOption(o)
	}
	return m.ToBytes()
}

// answer is what a client sees in a reply, for comparing.
type answer struct {
	Type     string
	TxID     dhcpv6.TransactionID
	ServerID string
	ClientID string
	DNS      []string
	Search   []string
	Refresh  time.Duration
	Status   string
	NTP      []string
}

func summarize(t *testing.T, m *dhcpv6.Message) *answer {
	t.Helper()
	if m == nil {
		return nil
	}
	// Decode the bytes on the wire, as a client would.
	m, err := dhcpv6.MessageFromBytes(m.ToBytes())
	if err != nil {
		t.Fatalf("reply does not decode: %v", err)
	}
	a := &answer{Type: m.MessageType.String(), TxID: m.TransactionID}
	if d := m.Options.ServerID(); d != nil {
		a.ServerID = d.String()
	}
	if d := m.Options.ClientID(); d != nil {
		a.ClientID = d.String()
	}
	for _, ip := range m.Options.DNS() {
		a.DNS = append(a.DNS, ip.String())
	}
	if l := m.Options.DomainSearchList(); l != nil {
		a.Search = l.Labels
	}
	if m.GetOneOption(dhcpv6.OptionInformationRefreshTime) != nil {
		a.Refresh = m.Options.InformationRefreshTime(0)
	}
	if s := m.Options.Status(); s != nil {
		a.Status = s.StatusCode.String()
	}
	for _, ip := range m.Options.NTPServers() {
		a.NTP = append(a.NTP, ip.String())
	}
	return a
}

func TestRespond(t *testing.T) {
	reply := func(clientID string) *answer {
		return &answer{
			Type: "REPLY", TxID: txid, ServerID: serverDUID.String(), ClientID: clientID,
			DNS: []string{"fd12:3456:789a::35"}, Search: []string{"home.arpa"}, Refresh: time.Hour,
		}
	}
	for _, tc := range []struct {
		name   string
		plan   *Plan // nil: testPlan
		b      []byte
		want   *answer
		reason string
	}{
		{
			name: "RFC 8415 18.3.6: Information-request gets a Reply with DNS servers and search list",
			b:    msg(t, dhcpv6.MessageTypeInformationRequest, dhcpv6.OptClientID(clientDUID)),
			want: reply(clientDUID.String()),
		},
		{
			name: "RFC 8415 18.3.6: Information-request without Client Identifier gets a Reply without one",
			b:    msg(t, dhcpv6.MessageTypeInformationRequest),
			want: reply(""),
		},
		{
			name: "RFC 8415 16.12: Information-request naming this server is answered",
			b:    msg(t, dhcpv6.MessageTypeInformationRequest, dhcpv6.OptClientID(clientDUID), dhcpv6.OptServerID(serverDUID)),
			want: reply(clientDUID.String()),
		},
		{
			name:   "RFC 8415 16.12: Information-request naming another server is discarded",
			b:      msg(t, dhcpv6.MessageTypeInformationRequest, dhcpv6.OptClientID(clientDUID), dhcpv6.OptServerID(otherDUID)),
			reason: ReasonServerID,
		},
		{
			name:   "RFC 8415 16.12: Information-request with an IA option is discarded",
			b:      msg(t, dhcpv6.MessageTypeInformationRequest, dhcpv6.OptClientID(clientDUID), &dhcpv6.OptIANA{IaId: [4]byte{1}}),
			reason: ReasonIAOption,
		},
		{
			name: "RFC 5908 4.1: the NTP servers go in OPTION_NTP_SERVER address suboptions; IPv4 and multicast ones do not",
			plan: &Plan{Enabled: true, NTP: []netip.Addr{
				netip.MustParseAddr("fd12:3456:789a::1"), netip.MustParseAddr("203.0.113.129"), netip.MustParseAddr("ff05::101"),
			}},
			b:    msg(t, dhcpv6.MessageTypeInformationRequest, dhcpv6.OptRequestedOption(dhcpv6.OptionNTPServer)),
			want: &answer{Type: "REPLY", TxID: txid, ServerID: serverDUID.String(), NTP: []string{"fd12:3456:789a::1"}},
		},
		{
			name: "no NTP server, no OPTION_NTP_SERVER",
			plan: &Plan{Enabled: true, NTP: []netip.Addr{netip.MustParseAddr("203.0.113.129")}},
			b:    msg(t, dhcpv6.MessageTypeInformationRequest),
			want: &answer{Type: "REPLY", TxID: txid, ServerID: serverDUID.String()},
		},
		{
			name: "RFC 8415 7.6: Information Refresh Time is never below IRT_MINIMUM",
			plan: &Plan{Enabled: true, InformationRefreshTime: time.Second},
			b:    msg(t, dhcpv6.MessageTypeInformationRequest),
			want: &answer{Type: "REPLY", TxID: txid, ServerID: serverDUID.String(), Refresh: 600 * time.Second},
		},
		{
			name: "RFC 8415 18.3.1: Solicit gets an Advertise with only NoAddrsAvail and the identifiers",
			b:    msg(t, dhcpv6.MessageTypeSolicit, dhcpv6.OptClientID(clientDUID), &dhcpv6.OptIANA{IaId: [4]byte{1}}),
			want: &answer{Type: "ADVERTISE", TxID: txid, ServerID: serverDUID.String(), ClientID: clientDUID.String(), Status: "NoAddrsAvail"},
		},
		{
			name:   "RFC 8415 16.2: Solicit without Client Identifier is discarded",
			b:      msg(t, dhcpv6.MessageTypeSolicit),
			reason: ReasonNoClientID,
		},
		{
			name:   "RFC 8415 16.2: Solicit with a Server Identifier is discarded",
			b:      msg(t, dhcpv6.MessageTypeSolicit, dhcpv6.OptClientID(clientDUID), dhcpv6.OptServerID(serverDUID)),
			reason: ReasonSolicitServer,
		},
		{
			name:   "RFC 8415 6.1: a stateless server does not answer Request (it has no bindings)",
			b:      msg(t, dhcpv6.MessageTypeRequest, dhcpv6.OptClientID(clientDUID), dhcpv6.OptServerID(serverDUID)),
			reason: ReasonType,
		},
		{
			name:   "RFC 8415 18.3.3: Confirm is not answered by a server that cannot check it",
			b:      msg(t, dhcpv6.MessageTypeConfirm, dhcpv6.OptClientID(clientDUID)),
			reason: ReasonType,
		},
		{
			name:   "RFC 8415 19: relay messages are not handled",
			b:      []byte{byte(dhcpv6.MessageTypeRelayForward), 0, 0, 0},
			reason: ReasonRelay,
		},
		{
			name:   "garbage options are dropped",
			b:      []byte{byte(dhcpv6.MessageTypeInformationRequest), 1, 2, 3, 0, 1, 0, 200, 1},
			reason: ReasonMalformed,
		},
		{
			name:   "a header cut short is dropped",
			b:      []byte{byte(dhcpv6.MessageTypeInformationRequest), 1},
			reason: ReasonMalformed,
		},
		{
			name:   "a disabled server answers nothing",
			plan:   &Plan{},
			b:      msg(t, dhcpv6.MessageTypeInformationRequest),
			reason: ReasonDisabled,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPlan
			if tc.plan != nil {
				p = *tc.plan
			}
			got, reason := respond(tc.b, p, serverDUID)
			if reason != tc.reason {
				t.Fatalf("reason = %q, want %q", reason, tc.reason)
			}
			if diff := cmp.Diff(tc.want, summarize(t, got)); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzRespond feeds arbitrary bytes to the server: it must never panic, and
// any answer must be a Reply or Advertise that echoes the transaction ID.
func FuzzRespond(f *testing.F) {
	f.Add(msg(f, dhcpv6.MessageTypeInformationRequest, dhcpv6.OptClientID(clientDUID),
		dhcpv6.OptRequestedOption(dhcpv6.OptionDNSRecursiveNameServer, dhcpv6.OptionDomainSearchList)))
	f.Add(msg(f, dhcpv6.MessageTypeSolicit, dhcpv6.OptClientID(clientDUID), &dhcpv6.OptIANA{IaId: [4]byte{1}}))
	f.Add(msg(f, dhcpv6.MessageTypeInformationRequest, dhcpv6.OptServerID(otherDUID)))
	f.Add([]byte{byte(dhcpv6.MessageTypeRelayForward), 0, 0, 0})
	f.Add([]byte{11, 1, 2, 3, 0, 1, 0, 200, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, reason := respond(b, testPlan, serverDUID)
		if got == nil {
			if reason == "" {
				t.Fatal("no answer and no reason")
			}
			return
		}
		if len(b) < 4 || got.TransactionID != (dhcpv6.TransactionID{b[1], b[2], b[3]}) {
			t.Fatalf("answer %v does not echo the transaction ID of % x", got.TransactionID, b[:min(len(b), 4)])
		}
		switch {
		case got.MessageType == dhcpv6.MessageTypeReply && b[0] == byte(dhcpv6.MessageTypeInformationRequest):
		case got.MessageType == dhcpv6.MessageTypeAdvertise && b[0] == byte(dhcpv6.MessageTypeSolicit):
		default:
			t.Fatalf("answered type %d with %s", b[0], got.MessageType)
		}
		if _, err := dhcpv6.MessageFromBytes(got.ToBytes()); err != nil {
			t.Fatalf("answer does not decode: %v", err)
		}
	})
}
