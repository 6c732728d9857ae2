package plan

import (
	"maps"
	"net/netip"
	"slices"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/firewall"
	"codeberg.org/monostack/gizmo/services/upnp"
)

// The bounds of the pinholes apps open (UPnP IGD:2 WANIPv6FirewallControl).
const (
	// MaxPinholeLease is the longest lease, A_ARG_TYPE_LeaseTime's top: a
	// day. A shorter cap would close pinholes early: AddPinhole tells the
	// app nothing of the lease it got, so it renews on the schedule of
	// the lease it asked for.
	MaxPinholeLease = 86400 * time.Second
	// PinholesPerHost and MaxPinholes bound the pinholes of one host and
	// of the whole LAN (701 PinholeSpaceExhausted beyond).
	PinholesPerHost = 16
	MaxPinholes     = 256
	// MinPinholePort: the ports below are the system's services (ssh,
	// SMB, printing) that an app has no business exposing.
	// WANIPv6FirewallControl:1 §2.6.3.3 recommends 1024 and up for
	// control points that did not authenticate; the owner exposes lower
	// ports himself (ExposedPorts).
	MinPinholePort = 1024
)

// Why a pinhole request is refused: the counters' reasons.
const (
	PinholeNotOwnAddress = "not_own_address"   // InternalClient is not the request's source
	PinholeUnknownHost   = "unknown_host"      // no host was seen with the source address
	PinholeAmbiguousHost = "ambiguous_host"    // more than one host was seen with it
	PinholePolicyOff     = "policy_off"        // the owner did not allow app pinholes on the host
	PinholeNotInLAN      = "not_in_lan_prefix" // the address is not in a delegated LAN /64
	PinholeLowPort       = "low_port"          // below MinPinholePort
	PinholeBadProtocol   = "bad_protocol"      // neither TCP nor UDP
	PinholeHostFull      = "host_full"         // PinholesPerHost reached
	PinholeFull          = "full"              // MaxPinholes reached
	PinholeNoSuchEntry   = "no_such_entry"     // no pinhole with that UniqueID
	PinholeOtherHost     = "other_host"        // the pinhole is another address's
)

func refuse(kind upnp.RefusalKind, reason string) error {
	return &upnp.Refusal{Kind: kind, Reason: reason}
}

// PinholeAdd decides an app's AddPinhole. The rules, in order:
//   - the pinhole is for the asking address itself (InternalClient is the
//     SOAP request's source), which one known host uses (§2.6.3.3);
//   - the owner allowed app pinholes on that host (policy app_pinholes);
//   - the address is in one of the LAN's delegated /64s, where inbound
//     traffic can reach it;
//   - the port is MinPinholePort or above, the protocol TCP or UDP;
//   - the same five-tuple renews the existing pinhole and keeps its
//     UniqueID (§2.6.3.3);
//   - a new one fits PinholesPerHost and MaxPinholes;
//   - the lease is clamped to MaxPinholeLease.
//
// It returns the host's MAC and the pinhole to record there (replacing
// the one with the same ID, if any), or a *upnp.Refusal. It only reads st.
func PinholeAdd(st *state.State, r upnp.PinholeRequest, now time.Time) (string, state.Pinhole, error) {
	src := r.Source.Unmap().WithZone("")
	if !src.Is6() || r.Client.WithZone("") != src {
		return "", state.Pinhole{}, refuse(upnp.NotAuthorized, PinholeNotOwnAddress)
	}
	mac, h, err := pinholeHost(st, src, now)
	if err != nil {
		return "", state.Pinhole{}, err
	}
	if r.Port < MinPinholePort {
		return "", state.Pinhole{}, refuse(upnp.NotAuthorized, PinholeLowPort)
	}
	if r.Proto != uint8(firewall.TCP) && r.Proto != uint8(firewall.UDP) {
		return "", state.Pinhole{}, refuse(upnp.NotAuthorized, PinholeBadProtocol)
	}
	want := state.Pinhole{
		Client: src, Proto: r.Proto, Port: r.Port,
		RemoteHost: r.RemoteHost.WithZone(""), RemotePort: r.RemotePort,
		Created: now, Expires: now.Add(clampLease(r.Lease)),
	}
	lans := NetworkOf(st, now).DelegatedLANs()
	live := 0
	for _, p := range h.Pinholes {
		if !livePinhole(h, p, lans, now) {
			continue
		}
		if p.Client == want.Client && p.Proto == want.Proto && p.Port == want.Port &&
			p.RemoteHost == want.RemoteHost && p.RemotePort == want.RemotePort {
			p.Expires = want.Expires
			return mac, p, nil
		}
		live++
	}
	if live >= PinholesPerHost {
		return "", state.Pinhole{}, refuse(upnp.SpaceExhausted, PinholeHostFull)
	}
	if countPinholes(LivePinholes(st, now)) >= MaxPinholes {
		return "", state.Pinhole{}, refuse(upnp.SpaceExhausted, PinholeFull)
	}
	want.ID = nextPinholeID(st)
	return mac, want, nil
}

// PinholeRenew decides an UpdatePinhole: the pinhole id with its new
// lease, for the host whose MAC it returns. Only the address the pinhole
// is for may renew it, and only while the owner allows app pinholes there.
func PinholeRenew(st *state.State, src netip.Addr, id uint16, lease time.Duration, now time.Time) (string, state.Pinhole, error) {
	mac, p, err := ownPinhole(st, src, id, now)
	if err != nil {
		return "", state.Pinhole{}, err
	}
	p.Expires = now.Add(clampLease(lease))
	return mac, p, nil
}

// PinholeDelete decides a DeletePinhole: the MAC of the host whose
// pinhole id goes. Only the address the pinhole is for may delete it.
func PinholeDelete(st *state.State, src netip.Addr, id uint16, now time.Time) (string, error) {
	mac, _, err := ownPinhole(st, src, id, now)
	return mac, err
}

// PinholeOf is the live pinhole id for its own address src (for
// CheckPinholeWorking): another address's is refused, like its renewal.
func PinholeOf(st *state.State, src netip.Addr, id uint16, now time.Time) (state.Pinhole, error) {
	_, p, err := ownPinhole(st, src, id, now)
	return p, err
}

// PinholesAllowed reports whether the host at src may open pinholes now
// (GetFirewallStatus's InboundPinholeAllowed for that host).
func PinholesAllowed(st *state.State, src netip.Addr, now time.Time) bool {
	src = src.Unmap().WithZone("")
	_, _, err := pinholeHost(st, src, now)
	return err == nil
}

// LivePinholes are the pinholes in force at now, by host MAC: not
// expired, on a host whose policy allows them, for an address the host
// still uses in a delegated LAN /64. The others wait for derive to drop
// them, and open nothing meanwhile.
func LivePinholes(st *state.State, now time.Time) map[string][]state.Pinhole {
	lans := NetworkOf(st, now).DelegatedLANs()
	out := map[string][]state.Pinhole{}
	for mac, h := range st.Hosts {
		for _, p := range h.Pinholes {
			if livePinhole(h, p, lans, now) {
				out[mac] = append(out[mac], p)
			}
		}
	}
	return out
}

// pinholeRules are the live pinholes as the firewall's host rules: each
// opens its port on its address, to every remote (the firewall's host
// rules have no remote side).
func pinholeRules(st *state.State, now time.Time) []firewall.HostRule {
	live := LivePinholes(st, now)
	var out []firewall.HostRule
	for _, mac := range slices.Sorted(maps.Keys(live)) {
		for _, p := range live[mac] {
			out = append(out, firewall.HostRule{
				Host:  mac,
				Addrs: []netip.Addr{p.Client},
				Ports: []firewall.Port{{Proto: firewall.Proto(p.Proto), Port: p.Port}},
			})
		}
	}
	return out
}

// countPinholes is the number of pinholes in a LivePinholes map.
func countPinholes(live map[string][]state.Pinhole) int {
	n := 0
	for _, ps := range live {
		n += len(ps)
	}
	return n
}

func livePinhole(h *state.Host, p state.Pinhole, lans []netip.Prefix, now time.Time) bool {
	if !h.Policy.AppPinholes || !p.Expires.After(now) {
		return false
	}
	seen, ok := h.Addrs[p.Client]
	if !ok || now.Sub(seen) > HostAddrMaxAge {
		return false
	}
	return slices.ContainsFunc(lans, func(l netip.Prefix) bool { return l.Contains(p.Client) })
}

// pinholeHost is the host that may open pinholes for src: the one host
// seen with it within HostAddrMaxAge, with app pinholes allowed, src in a
// delegated LAN /64.
func pinholeHost(st *state.State, src netip.Addr, now time.Time) (string, *state.Host, error) {
	var mac string
	var host *state.Host
	for m, h := range st.Hosts {
		if seen, ok := h.Addrs[src]; ok && now.Sub(seen) <= HostAddrMaxAge {
			if host != nil {
				// Two hosts claim the address: one of them lies (a
				// spoofed neighbour advertisement). Neither gets it.
				return "", nil, refuse(upnp.NotAuthorized, PinholeAmbiguousHost)
			}
			mac, host = m, h
		}
	}
	if host == nil {
		return "", nil, refuse(upnp.NotAuthorized, PinholeUnknownHost)
	}
	if !host.Policy.AppPinholes {
		return "", nil, refuse(upnp.NotAllowed, PinholePolicyOff)
	}
	if !slices.ContainsFunc(NetworkOf(st, now).DelegatedLANs(), func(l netip.Prefix) bool { return l.Contains(src) }) {
		return "", nil, refuse(upnp.NotAuthorized, PinholeNotInLAN)
	}
	return mac, host, nil
}

// ownPinhole finds the live pinhole id and checks that src may change it.
func ownPinhole(st *state.State, src netip.Addr, id uint16, now time.Time) (string, state.Pinhole, error) {
	src = src.Unmap().WithZone("")
	lans := NetworkOf(st, now).DelegatedLANs()
	for mac, h := range st.Hosts {
		for _, p := range h.Pinholes {
			if p.ID != id || !livePinhole(h, p, lans, now) {
				continue
			}
			if p.Client != src {
				return "", state.Pinhole{}, refuse(upnp.NotAuthorized, PinholeOtherHost)
			}
			return mac, p, nil
		}
	}
	return "", state.Pinhole{}, refuse(upnp.NoSuchEntry, PinholeNoSuchEntry)
}

// nextPinholeID is the first free UniqueID after the last one given,
// skipping 0, so that IDs come in turn and an old one is not soon reused.
func nextPinholeID(st *state.State) uint16 {
	used := map[uint16]bool{}
	for _, h := range st.Hosts {
		for _, p := range h.Pinholes {
			used[p.ID] = true
		}
	}
	id := st.LastPinholeID
	for range 1 << 16 {
		id++
		if id != 0 && !used[id] {
			break
		}
	}
	return id
}

func clampLease(d time.Duration) time.Duration {
	return min(max(d, time.Second), MaxPinholeLease)
}
