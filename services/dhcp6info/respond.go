package dhcp6info

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// Plan is what the server hands out. It is a plain value computed by the
// daemon (gizmo/plan.DHCP6Info) and given to Update.
type Plan struct {
	// Enabled false makes the server silent, e.g. on a LAN that already has
	// its own DHCPv6 server (the "existing network" mode).
	Enabled bool
	// DNS are the recursive DNS servers (RFC 3646 §3, option 23).
	DNS []netip.Addr
	// DomainSearch is the domain search list (RFC 3646 §4, option 24).
	DomainSearch []string
	// NTP are the time servers sent in OPTION_NTP_SERVER's address
	// suboptions (RFC 5908 §4.1): the gizmo's ULA router address when it
	// serves time to the LAN.
	NTP []netip.Addr
	// InformationRefreshTime tells clients when to ask again (RFC 8415
	// §21.23); zero leaves the option out, so clients use IRT_DEFAULT (24 h).
	InformationRefreshTime time.Duration
}

// Reasons a message gets no answer; the keys of Stats.Dropped.
const (
	ReasonDisabled      = "disabled"
	ReasonMalformed     = "malformed"
	ReasonRelay         = "relay"          // relay messages: no relay support
	ReasonType          = "type"           // a message a stateless server does not answer
	ReasonServerID      = "server_id"      // addressed to another server (RFC 8415 §16.12)
	ReasonIAOption      = "ia_option"      // Information-request with an IA (RFC 8415 §16.12)
	ReasonNoClientID    = "no_client_id"   // Solicit without Client Identifier (RFC 8415 §16.2)
	ReasonSolicitServer = "solicit_server" // Solicit with Server Identifier (RFC 8415 §16.2)
)

// minRefreshTime is IRT_MINIMUM (RFC 8415 §7.6): clients raise anything
// lower to it, so the server does not send less.
const minRefreshTime = 600 * time.Second

// respond is the whole protocol: the answer to the message b, or nil and the
// reason to stay silent. It never panics on any input (see the fuzz target).
//
// A stateless server (RFC 8415 §6.1) answers Information-request with a
// Reply carrying the configuration. It also answers Solicit, because
// RFC 8415 §18.3.1 says a server that will not assign any addresses or
// prefixes MUST send an Advertise with only a NoAddrsAvail status and the
// two identifiers; clients then stop waiting for this server (RFC 8415
// §18.2.9). Every other message type concerns bindings this server never
// makes, and is dropped.
func respond(b []byte, p Plan, serverID dhcpv6.DUID) (reply *dhcpv6.Message, reason string) {
	if !p.Enabled {
		return nil, ReasonDisabled
	}
	if len(b) > 0 && (dhcpv6.MessageType(b[0]) == dhcpv6.MessageTypeRelayForward || dhcpv6.MessageType(b[0]) == dhcpv6.MessageTypeRelayReply) {
		return nil, ReasonRelay
	}
	req, err := parse(b)
	if err != nil {
		return nil, ReasonMalformed
	}
	ours := serverID.ToBytes()
	switch req.MessageType {
	case dhcpv6.MessageTypeInformationRequest:
		// RFC 8415 §16.12.
		if sid := req.Options.GetOne(dhcpv6.OptionServerID); sid != nil && !bytes.Equal(sid.ToBytes(), ours) {
			return nil, ReasonServerID
		}
		for _, code := range []dhcpv6.OptionCode{dhcpv6.OptionIANA, dhcpv6.OptionIATA, dhcpv6.OptionIAPD} {
			if req.Options.GetOne(code) != nil {
				return nil, ReasonIAOption
			}
		}
		// RFC 8415 §18.3.6: Reply with the same transaction ID, our Server
		// Identifier, the client's Client Identifier if it sent one, and
		// the configuration.
		rep := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeReply, TransactionID: req.TransactionID}
		rep.AddOption(dhcpv6.OptServerID(serverID))
		if cid := req.Options.GetOne(dhcpv6.OptionClientID); cid != nil {
			rep.AddOption(cid)
		}
		var dns []net.IP
		for _, a := range p.DNS {
			if a.Is6() && !a.Is4In6() {
				dns = append(dns, a.AsSlice())
			}
		}
		if len(dns) > 0 {
			rep.AddOption(dhcpv6.OptDNS(dns...))
		}
		if len(p.DomainSearch) > 0 {
			dhcpv6.WithDomainSearchList(p.DomainSearch...)(rep)
		}
		if o := ntpOption(p.NTP); o != nil {
			rep.AddOption(o)
		}
		if p.InformationRefreshTime > 0 {
			rep.AddOption(dhcpv6.OptInformationRefreshTime(max(p.InformationRefreshTime, minRefreshTime)))
		}
		return rep, ""

	case dhcpv6.MessageTypeSolicit:
		// RFC 8415 §16.2.
		cid := req.Options.GetOne(dhcpv6.OptionClientID)
		if cid == nil {
			return nil, ReasonNoClientID
		}
		if req.Options.GetOne(dhcpv6.OptionServerID) != nil {
			return nil, ReasonSolicitServer
		}
		// RFC 8415 §18.3.1: nothing will be assigned.
		adv := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeAdvertise, TransactionID: req.TransactionID}
		adv.AddOption(dhcpv6.OptServerID(serverID))
		adv.AddOption(cid)
		adv.AddOption(&dhcpv6.OptStatusCode{
			StatusCode:    iana.StatusNoAddrsAvail,
			StatusMessage: "stateless service only: use SLAAC, ask with Information-request",
		})
		return adv, ""
	}
	return nil, ReasonType
}

// ntpOption is OPTION_NTP_SERVER with one address suboption per server
// (RFC 5908 §4.1: unicast IPv6 addresses only), or nil when there is none.
func ntpOption(addrs []netip.Addr) dhcpv6.Option {
	o := &dhcpv6.OptNTPServer{}
	for _, a := range addrs {
		if a.Is6() && !a.Is4In6() && !a.IsMulticast() && !a.IsUnspecified() {
			sub := dhcpv6.NTPSuboptionSrvAddr(a.AsSlice())
			o.Suboptions.Add(&sub)
		}
	}
	if len(o.Suboptions) == 0 {
		return nil
	}
	return o
}

// parse decodes a client message. The library's parser is not ours to
// harden, so a panic in it is turned into an error: bad input must never
// take the daemon down.
func parse(b []byte) (m *dhcpv6.Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("dhcp6info: parser panic: %v", r)
		}
	}()
	return dhcpv6.MessageFromBytes(b)
}
