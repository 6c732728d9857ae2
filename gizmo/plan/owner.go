package plan

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/dhcp4"
)

// ValidatePolicy checks a host policy the owner submits for the host mac
// against the state, so that a policy that could never apply is refused
// with a message that says why: its exposed ports must parse ("tcp/443"),
// and a DHCPv4 reservation must be a free host address of the legacy
// network, neither the gizmo's own nor another host's reservation or
// current lease.
func ValidatePolicy(st *state.State, mac string, p state.HostPolicy) error {
	reserved := map[netip.Addr]string{}
	for other, op := range policiesOf(st) {
		if other != mac && op.IPv4.IsValid() {
			reserved[op.IPv4] = other
		}
	}
	return validatePolicy(st, mac, p, reserved)
}

// validatePolicy is ValidatePolicy against a given set of the other hosts'
// reservations (address → MAC).
func validatePolicy(st *state.State, mac string, p state.HostPolicy, reserved map[netip.Addr]string) error {
	if _, err := parsePorts(p.ExposedPorts); err != nil {
		return fmt.Errorf("exposed ports: %w", err)
	}
	r := p.IPv4
	if !r.IsValid() {
		return nil
	}
	l := st.LAN.Legacy4
	if !r.Is4() {
		return fmt.Errorf("reservation %s is not an IPv4 address", r)
	}
	if !l.IsValid() {
		return fmt.Errorf("reservation %s: the LAN has no legacy IPv4 network", r)
	}
	sub := l.Masked()
	switch {
	case !sub.Contains(r):
		return fmt.Errorf("reservation %s is outside the legacy network %s", r, sub)
	case r == sub.Addr() || r == dhcp4.Broadcast(sub):
		return fmt.Errorf("reservation %s is the network's own or broadcast address, not a host's", r)
	case r == l.Addr():
		return fmt.Errorf("reservation %s is the gizmo's own address", r)
	}
	if other, ok := reserved[r]; ok {
		return fmt.Errorf("reservation %s is already reserved for %s", r, describeHost(st, other))
	}
	// A reservation never takes an address from a host that holds it: the
	// DHCPv4 server would have to refuse one of them.
	for other, h := range st.Hosts {
		if other != mac && h.IPv4Lease == r {
			return fmt.Errorf("reservation %s is leased to %s now; pick another address, or reserve it once that host has let it go", r, describeHost(st, other))
		}
	}
	return nil
}

// policiesOf are every known host's policies: the hosts of this run and
// the remembered ones.
func policiesOf(st *state.State) map[string]state.HostPolicy {
	out := make(map[string]state.HostPolicy, len(st.Hosts)+len(st.Remembered))
	for mac, r := range st.Remembered {
		out[mac] = r.Policy
	}
	for mac, h := range st.Hosts {
		out[mac] = h.Policy
	}
	return out
}

// describeHost names a host for a message: its name and MAC, or the MAC.
func describeHost(st *state.State, mac string) string {
	name := ""
	if h, ok := st.Hosts[mac]; ok {
		name = cmp.Or(h.Policy.Hostname, h.Hostname)
	} else if r, ok := st.Remembered[mac]; ok {
		name = cmp.Or(r.Policy.Hostname, r.Hostname)
	}
	if name == "" {
		return mac
	}
	return name + " (" + mac + ")"
}

// SettingsOf are the owner's settings in the state, for a backup.
func SettingsOf(st *state.State) state.Settings {
	s := state.Settings{Hosts: policiesOf(st), InboundRules: slices.Clone(st.InboundRules), WANVLAN: st.WANVLAN}
	for mac, p := range s.Hosts {
		p.ExposedPorts = slices.Clone(p.ExposedPorts)
		s.Hosts[mac] = p
	}
	return s
}

// ValidateSettings checks settings to restore as a whole, against the
// state they will replace: every host entry as ValidatePolicy does (but
// against the other entries' reservations, since the file replaces the
// current ones), every inbound rule as ValidateInboundRule does, and the
// WAN VLAN as ValidateWANVLAN does. The error names each bad entry, one per
// line, in a stable order.
func ValidateSettings(st *state.State, s state.Settings, now time.Time) error {
	var errs []error
	reserved := map[netip.Addr]string{}
	macs := slices.Sorted(maps.Keys(s.Hosts))
	for _, mac := range macs {
		if hw, err := net.ParseMAC(mac); err != nil || len(hw) != 6 || hw.String() != mac {
			errs = append(errs, fmt.Errorf("host %q: not a MAC address in the form 02:00:00:00:00:10", mac))
			continue
		}
		if r := s.Hosts[mac].IPv4; r.IsValid() {
			if _, taken := reserved[r]; !taken {
				reserved[r] = mac
			}
		}
	}
	for _, mac := range macs {
		p := s.Hosts[mac]
		others := maps.Clone(reserved)
		if others[p.IPv4] == mac {
			delete(others, p.IPv4)
		}
		if err := validatePolicy(st, mac, p, others); err != nil {
			errs = append(errs, fmt.Errorf("host %s: %w", mac, err))
		}
	}
	for i, r := range s.InboundRules {
		if err := ValidateInboundRule(st, r, now); err != nil {
			errs = append(errs, fmt.Errorf("inbound rule %d (%q): %w", i+1, r.Name, err))
		}
	}
	if err := ValidateWANVLAN(int(s.WANVLAN)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
