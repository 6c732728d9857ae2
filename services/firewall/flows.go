package firewall

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Removing an inbound rule must end what it let in. The ruleset only judges
// a flow's first packet: conntrack accepts the rest as established (the
// first rule of forward), so without more a removed exposed port would
// stay open for every connection made while it was exposed, for as long as
// they last (days, for an idle TCP connection). After a ruleset that lets
// less in replaces one that let more in, Apply deletes the conntrack entries
// of the flows the old rules admitted and the new ones do not; their next
// segment then meets forward as a new flow without SYN and is dropped
// (CounterDropNotSyn), from either side.

// admitsInbound reports whether an inbound rule of p lets a new flow from
// the WAN to dst, protocol proto, destination port dport in: a token rule
// on a LAN /64, a prefix rule, or a host's exposed port. It mirrors
// forwardWAN's rules, for deciding which established flows end when the
// rules change.
func (p Plan) admitsInbound(dst netip.Addr, proto Proto, dport uint16) bool {
	dst = dst.Unmap().WithZone("")
	if !dst.Is6() {
		return false // the inbound rules are IPv6 only
	}
	for _, q := range p.PrefixRules {
		if q.Contains(dst) {
			return true
		}
	}
	port := Port{proto, dport}
	if slices.ContainsFunc(lan6(p), func(l netip.Prefix) bool { return l.Contains(dst) }) {
		b := dst.As16()
		clear(b[:8])
		iid := netip.AddrFrom16(b)
		for _, r := range p.TokenRules {
			if r.Token == iid && slices.Contains(r.Ports, port) {
				return true
			}
		}
	}
	for _, h := range p.HostRules {
		if slices.Contains(h.Addrs, dst) && slices.Contains(h.Ports, port) {
			return true
		}
	}
	return false
}

// inboundAtoms lists every (destination, port) p's inbound rules open, in
// a comparable form, so that Apply can tell cheaply whether a new plan
// lets less in than the old one.
func (p Plan) inboundAtoms() map[string]bool {
	out := map[string]bool{}
	for _, q := range p.PrefixRules {
		out["prefix "+q.Masked().String()] = true
	}
	for _, l := range mergePrefixes(lan6(p)) {
		for _, r := range p.TokenRules {
			for _, pt := range r.Ports {
				out[fmt.Sprintf("token %v %v %v", l, r.Token, pt)] = true
			}
		}
	}
	for _, h := range p.HostRules {
		for _, a := range h.Addrs {
			for _, pt := range h.Ports {
				out[fmt.Sprintf("host %v %v", a, pt)] = true
			}
		}
	}
	return out
}

// admitsLess reports whether next opens anything less than old does.
func admitsLess(old, next Plan) bool {
	now := next.inboundAtoms()
	for a := range old.inboundAtoms() {
		if !now[a] {
			return true
		}
	}
	return false
}

// endedFlows matches the conntrack flows to end when next replaces old:
// flows that came from outside (their original source is not one of ours),
// that an inbound rule of old let in and no inbound rule of next lets in.
// It is a netlink.CustomConntrackFilter.
type endedFlows struct{ old, next Plan }

func (e endedFlows) MatchConntrackFlow(f *netlink.ConntrackFlow) bool {
	src, ok1 := netip.AddrFromSlice(f.Forward.SrcIP)
	dst, ok2 := netip.AddrFromSlice(f.Forward.DstIP)
	if !ok1 || !ok2 {
		return false
	}
	if e.old.inside(src.Unmap()) {
		return false // opened from the LAN or by the gizmo: no inbound rule made it
	}
	proto, port := Proto(f.Forward.Protocol), f.Forward.DstPort
	return e.old.admitsInbound(dst, proto, port) && !e.next.admitsInbound(dst, proto, port)
}

// inside reports whether a is one of the LAN's or the gizmo's own: the
// delegation, retired ones, the LAN /64s, the ULA, the WAN addresses. The
// shared /64 is not: the upstream's neighbours live in it too.
func (p Plan) inside(a netip.Addr) bool {
	var ps []netip.Prefix
	ps = append(ps, validPrefixes(p.Delegated, p.ULA)...)
	ps = append(ps, p.Retired...)
	ps = append(ps, p.LANPrefixes...)
	ps = append(ps, hostPrefixes(p.WANIPv6)...)
	return slices.ContainsFunc(ps, func(q netip.Prefix) bool { return q.Contains(a) })
}

// endFlows deletes the conntrack entries of the flows old let in and next
// does not, in the service's namespace, and returns how many it deleted.
func (s *Service) endFlows(old, next Plan) (uint, error) {
	h, err := s.conntrack()
	if err != nil {
		return 0, err
	}
	defer h.Close()
	n, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET6, endedFlows{old: old, next: next})
	if err != nil {
		return n, fmt.Errorf("firewall: end flows the removed inbound rules let in: %w", err)
	}
	return n, nil
}

// conntrack opens a netfilter netlink handle in the service's namespace.
func (s *Service) conntrack() (*netlink.Handle, error) {
	var h *netlink.Handle
	var err error
	if s.cfg.NetNS != 0 {
		h, err = netlink.NewHandleAt(netns.NsHandle(s.cfg.NetNS), unix.NETLINK_NETFILTER)
	} else {
		h, err = netlink.NewHandle(unix.NETLINK_NETFILTER)
	}
	if err != nil {
		return nil, fmt.Errorf("firewall: conntrack netlink: %w", err)
	}
	return h, nil
}

var _ netlink.CustomConntrackFilter = endedFlows{}
