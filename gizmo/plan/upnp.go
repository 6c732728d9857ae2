package plan

import (
	"time"

	"github.com/google/uuid"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/upnp"
)

// UPnPPort is the UPnP IGD's HTTP port (descriptions and SOAP control) on
// the gizmo's LAN addresses. SSDP is on UDP 1900 (UDA 1.1 §1.1.2).
const UPnPPort = 5000

// upnpNamespace names the gizmo's UPnP device UUIDs (RFC 9562 §5.5: a
// name-based UUID in a namespace of one's own).
var upnpNamespace = uuid.MustParse("5c2a3b8e-1f0d-4c55-9d1e-6a7e0b3f2c41")

// UPnP is the IGD's plan: it listens on the gizmo's own LAN addresses,
// the address in the current delegation's LAN /64, the management ULA and
// the legacy IPv4, never the uplink's. Its IPv6 LOCATION is the
// delegation's address where there is one: hosts then talk to it from
// their global addresses (RFC 6724 §5 rule 6), the ones apps want
// pinholes on and the ones the pinhole rules accept as the asker's own.
// Off in the existing-network mode, where the network's own router is the
// firewall.
func UPnP(st *state.State, existingNetwork bool, now time.Time) upnp.Plan {
	if existingNetwork || st.LAN.Interface == "" {
		return upnp.Plan{}
	}
	n := NetworkOf(st, now)
	if !n.ULA.IsValid() {
		return upnp.Plan{} // the device's identity is made from the ULA
	}
	var p upnp.Plan
	if d := n.Delegated; d != nil {
		p.Listen = append(p.Listen, d.Router)
		p.Location6 = d.Router
	}
	p.Listen = append(p.Listen, n.RouterULA)
	if !p.Location6.IsValid() {
		p.Location6 = n.RouterULA
	}
	if l := n.Legacy4; l.IsValid() {
		p.Listen = append(p.Listen, l.Addr())
		p.Location4 = l.Addr()
	}
	p.Port = UPnPPort
	p.UUID = uuid.NewSHA1(upnpNamespace, []byte(n.ULA.String())).String()
	p.PresentationURL = "http://" + RouterFQDN + "/"
	return p
}
