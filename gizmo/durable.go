package main

import (
	"crypto/rand"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"

	"codeberg.org/monostack/gizmo/gizmo/derive"
	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/internal/persist"
)

// durable is the file form of the state's persisted fields. The state owns
// them; durableOf builds this view when it is written. Services that speak
// protocols keep their own files beside it (DHCPv4 leases, the DHCPv6 DUID
// and lease).
type durable struct {
	// ULA is generated once (RFC 4193 §3.2) and never changes, so that the
	// management addresses and the DNS addresses stay put.
	ULA netip.Prefix `json:"ula"`
	// Hosts are the records worth keeping across a reboot
	// (state.HostRecord.Durable: a policy the owner set or a name), of
	// the hosts seen in this run and the remembered ones; at most
	// derive.MaxRecords. A host that is neither is met again as new.
	Hosts map[string]state.HostRecord `json:"hosts"`
	// InboundRules are the owner's token and subnet firewall rules.
	InboundRules []state.InboundRule `json:"inbound_rules,omitempty"`
	// ProvenWAN is the port that last carried a delegation or a DHCPv4
	// lease as the WAN, or that the owner chose: after a reboot it keeps
	// the role if it has carrier (gizmo/roles.go).
	ProvenWAN *state.ProvenWAN `json:"proven_wan,omitempty"`
}

const durableFile = "gizmo.json"

// durableOf is the persisted view of st. The caller holds the lock; the
// result shares nothing with st.
func durableOf(st *state.State) durable {
	d := durable{ULA: st.ULA, InboundRules: slices.Clone(st.InboundRules), Hosts: make(map[string]state.HostRecord, len(st.Hosts)+len(st.Remembered))}
	if p := st.Roles.Proven; p.MAC != "" {
		d.ProvenWAN = &p
	}
	for mac, r := range st.Remembered {
		if r.Durable() {
			r.Policy.ExposedPorts = slices.Clone(r.Policy.ExposedPorts)
			d.Hosts[mac] = r
		}
	}
	for mac, h := range st.Hosts {
		if r := h.Record(); r.Durable() {
			d.Hosts[mac] = r
		}
	}
	return d
}

// restoreDurable puts what was persisted into a fresh state: the hosts wait
// in Remembered until they are seen.
func restoreDurable(st *state.State, d durable) {
	st.ULA = d.ULA
	st.InboundRules = d.InboundRules
	st.Remembered = make(map[string]state.HostRecord, len(d.Hosts))
	for mac, r := range d.Hosts {
		if r.Durable() {
			st.Remembered[mac] = r
		}
	}
	if d.ProvenWAN != nil {
		st.Roles.Proven = *d.ProvenWAN
	}
	derive.BoundRecords(st)
}

// loadDurable reads the state dir's file; a missing or corrupt one starts
// fresh, with a new ULA.
func loadDurable(dir string) (durable, []error) {
	var d durable
	var warnings []error
	if _, err := persist.ReadJSON(filepath.Join(dir, durableFile), &d); err != nil {
		// A corrupt file was moved aside: start fresh, but say so.
		warnings = append(warnings, err)
		d = durable{}
	}
	if !d.ULA.IsValid() || d.ULA.Bits() != 48 || !isULA(d.ULA.Addr()) {
		d.ULA = newULA()
	}
	if d.Hosts == nil {
		d.Hosts = map[string]state.HostRecord{}
	}
	return d, warnings
}

func saveDurable(dir string, d durable) error {
	if err := persist.WriteJSON(filepath.Join(dir, durableFile), d); err != nil {
		return fmt.Errorf("gizmo: save state: %w", err)
	}
	return nil
}

// newULA returns a fresh fdXX:XXXX:XXXX::/48 with a random 40-bit Global ID
// (RFC 4193 §3.2.1 allows any good random source in place of the SHA-1 recipe).
func newULA() netip.Prefix {
	var b [16]byte
	b[0] = 0xfd
	rand.Read(b[1:6])
	return netip.PrefixFrom(netip.AddrFrom16(b), 48)
}

func isULA(a netip.Addr) bool {
	return a.Is6() && a.As16()[0] == 0xfd
}
