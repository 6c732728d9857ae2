package upnp

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// actions are the actions of WANIPv6FirewallControl:1 (§2.6), the
// values of the counters' action label.
var actions = map[string]bool{
	"GetFirewallStatus": true, "GetOutboundPinholeTimeout": true,
	"AddPinhole": true, "UpdatePinhole": true, "DeletePinhole": true,
	"GetPinholePackets": true, "CheckPinholeWorking": true,
}

// maxLeaseSeconds is the upper bound of A_ARG_TYPE_LeaseTime, whose
// allowed range is 1 to 86400 seconds.
const maxLeaseSeconds = 86400

// IP protocol numbers of A_ARG_TYPE_Protocol; 65535 is its wildcard.
const (
	protoTCP      = 6
	protoUDP      = 17
	protoWildcard = 65535
)

// act runs one control request from src. It returns the out arguments,
// or the fault to answer and, for a refusal, its reason.
func (s *Service) act(src netip.Addr, c call, flows inboundFlows) ([]arg, *faultError, string) {
	switch c.Action {
	case "GetFirewallStatus":
		// InboundPinholeAllowed is the asking host's: the owner allows
		// pinholes per host.
		return []arg{{"FirewallEnabled", "1"}, {"InboundPinholeAllowed", boolArg(s.cfg.Backend.PinholesAllowed(src))}}, nil, ""
	case "GetOutboundPinholeTimeout":
		t, f := s.outboundTimeout(c.Args)
		if f != nil {
			return nil, f, ""
		}
		return []arg{{"OutboundPinholeTimeout", strconv.FormatUint(uint64(t), 10)}}, nil, ""
	case "AddPinhole":
		req, f := pinholeRequest(src, c.Args)
		if f != nil {
			return nil, f, ""
		}
		p, err := s.cfg.Backend.AddPinhole(req)
		if err != nil {
			f, reason := refusal(err)
			return nil, f, reason
		}
		return []arg{{"UniqueID", strconv.Itoa(int(p.ID))}}, nil, ""
	case "UpdatePinhole", "DeletePinhole", "CheckPinholeWorking":
		id, f := uintArg(c.Args, "UniqueID", 16)
		if f != nil {
			return nil, f, ""
		}
		return s.actOnPinhole(src, c, uint16(id), flows)
	case "GetPinholePackets":
		// No one counts a pinhole's packets (doc.go); the SCPD does not
		// list the action.
		return nil, fault(errOptionalActionNotImplemented, "no packet counters per pinhole"), ""
	}
	return nil, fault(errInvalidAction, "no action %q", c.Action), ""
}

// actOnPinhole runs the actions on one pinhole of src's, the one its
// UniqueID names. A refusal of the backend's becomes the fault.
func (s *Service) actOnPinhole(src netip.Addr, c call, id uint16, flows inboundFlows) ([]arg, *faultError, string) {
	var err error
	switch c.Action {
	case "UpdatePinhole":
		lease, f := leaseArg(c.Args, "NewLeaseTime")
		if f != nil {
			return nil, f, ""
		}
		_, err = s.cfg.Backend.UpdatePinhole(src, id, lease)
	case "DeletePinhole":
		err = s.cfg.Backend.DeletePinhole(src, id)
	case "CheckPinholeWorking":
		var p Pinhole
		if p, err = s.cfg.Backend.Pinhole(src, id); err == nil {
			return checkWorking(p, flows)
		}
	}
	if err != nil {
		f, reason := refusal(err)
		return nil, f, reason
	}
	return nil, nil, ""
}

// checkWorking answers CheckPinholeWorking for p: whether a flow came in
// through it.
func checkWorking(p Pinhole, flows inboundFlows) ([]arg, *faultError, string) {
	if flows == nil {
		return nil, fault(errActionFailed, "the conntrack table cannot be read"), ""
	}
	n, err := flows.count(p.Client, p.Proto, p.Port)
	if err != nil {
		return nil, fault(errActionFailed, "%v", err), ""
	}
	if n == 0 {
		// No flow came in through the pinhole, or its state is gone.
		return nil, fault(errNoPacketSent, "no flow to [%s]:%d is tracked", p.Client, p.Port), ""
	}
	return []arg{{"IsWorking", "1"}}, nil, ""
}

// pinholeRequest parses AddPinhole's arguments (§2.6.3) and refuses the
// wildcards AddPinhole does not take, each with its own error code.
func pinholeRequest(src netip.Addr, args map[string]string) (PinholeRequest, *faultError) {
	r := PinholeRequest{Source: src}
	var f *faultError
	if r.RemoteHost, f = addrArg(args, "RemoteHost"); f != nil {
		return r, f
	}
	var port uint64
	if port, f = uintArg(args, "RemotePort", 16); f != nil {
		return r, f
	}
	r.RemotePort = uint16(port)
	if r.Client, f = addrArg(args, "InternalClient"); f != nil {
		return r, f
	}
	if !r.Client.IsValid() {
		return r, fault(errWildCardNotPermittedInSrcIP, "InternalClient must name the host")
	}
	if port, f = uintArg(args, "InternalPort", 16); f != nil {
		return r, f
	}
	if port == 0 {
		return r, fault(errInternalPortWildcardingNotAllowed, "InternalPort must name a port")
	}
	r.Port = uint16(port)
	proto, f := protoArg(args)
	if f != nil {
		return r, f
	}
	if proto == protoWildcard {
		return r, fault(errProtocolWildcardingNotAllowed, "Protocol must be TCP or UDP")
	}
	r.Proto = uint8(proto)
	if r.Lease, f = leaseArg(args, "LeaseTime"); f != nil {
		return r, f
	}
	return r, nil
}

// outboundTimeout answers GetOutboundPinholeTimeout (§2.6.2): how long
// the firewall keeps an outbound flow's state after its last packet,
// conntrack's timeout for an established TCP connection or a UDP flow
// that has seen replies; for the protocol wildcard, the shorter.
func (s *Service) outboundTimeout(args map[string]string) (uint32, *faultError) {
	for _, a := range []string{"RemoteHost", "InternalClient"} {
		if _, f := addrArg(args, a); f != nil {
			return 0, f
		}
	}
	for _, p := range []string{"RemotePort", "InternalPort"} {
		if _, f := uintArg(args, p, 16); f != nil {
			return 0, f
		}
	}
	proto, f := protoArg(args)
	if f != nil {
		return 0, f
	}
	tcp := s.conntrackTimeout("nf_conntrack_tcp_timeout_established", 5*24*3600)
	udp := s.conntrackTimeout("nf_conntrack_udp_timeout_stream", 120)
	switch proto {
	case protoTCP:
		return tcp, nil
	case protoUDP:
		return udp, nil
	}
	return min(tcp, udp), nil
}

// conntrackTimeout reads one of the kernel's conntrack timeouts, or its
// default when the file is not there (no conntrack module loaded yet).
func (s *Service) conntrackTimeout(name string, def uint32) uint32 {
	b, err := os.ReadFile(filepath.Join(s.cfg.ConntrackDir, name))
	if err != nil {
		return def
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	if err != nil {
		return def
	}
	return uint32(v)
}

// refusal turns a Backend error into the fault that answers it.
func refusal(err error) (*faultError, string) {
	var r *Refusal
	if errors.As(err, &r) {
		return fault(r.code(), "%s", r.Reason), r.Reason
	}
	return fault(errActionFailed, "%v", err), "backend_error"
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// argValue returns a required argument, surrounding whitespace removed.
func argValue(args map[string]string, name string) (string, *faultError) {
	v, ok := args[name]
	if !ok {
		return "", fault(errInvalidArgs, "%s missing", name)
	}
	return strings.TrimSpace(v), nil
}

// uintArg parses a ui2 or ui4 argument (UDA 1.1 §2.5: decimal).
func uintArg(args map[string]string, name string, bits int) (uint64, *faultError) {
	v, f := argValue(args, name)
	if f != nil {
		return 0, f
	}
	n, err := strconv.ParseUint(v, 10, bits)
	if err != nil {
		return 0, fault(errInvalidArgs, "%s %q: want a number below 2^%d", name, v, bits)
	}
	return n, nil
}

// addrArg parses an A_ARG_TYPE_IPv6Address: an IPv6 address, or the
// wildcard (the empty string; "*" as some clients send it; and ::, which
// names no host). Names are refused: a SOAP request must not make the
// gizmo resolve anything.
func addrArg(args map[string]string, name string) (netip.Addr, *faultError) {
	v, f := argValue(args, name)
	if f != nil {
		return netip.Addr{}, f
	}
	if v == "" || v == "*" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" {
		return netip.Addr{}, fault(errInvalidArgs, "%s %q: want an IPv6 address", name, v)
	}
	if a.IsUnspecified() {
		return netip.Addr{}, nil
	}
	return a, nil
}

// protoArg parses A_ARG_TYPE_Protocol: TCP, UDP or the wildcard; other
// protocols (UDP-Lite, 136) have no place in the firewall's rules.
func protoArg(args map[string]string) (uint64, *faultError) {
	p, f := uintArg(args, "Protocol", 16)
	if f != nil {
		return 0, f
	}
	if p != protoTCP && p != protoUDP && p != protoWildcard {
		return 0, fault(errProtocolNotSupported, "protocol %d: only TCP (6) and UDP (17)", p)
	}
	return p, nil
}

// leaseArg parses a LeaseTime: at least one second, the bottom of
// A_ARG_TYPE_LeaseTime's range. A lease above its top is left to the
// Backend to clamp.
func leaseArg(args map[string]string, name string) (time.Duration, *faultError) {
	n, f := uintArg(args, name, 32)
	if f != nil {
		return 0, f
	}
	if n == 0 {
		return 0, fault(errInvalidArgs, "%s 0: want 1 to %d seconds", name, maxLeaseSeconds)
	}
	return time.Duration(n) * time.Second, nil
}
