package upnp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/uuid"
)

// Plan is what the service serves, made by the daemon from its state
// (gizmo/plan.UPnP). The zero Plan serves nothing.
type Plan struct {
	// Listen are the gizmo's own LAN addresses on which the description
	// and control server listens, on Port.
	Listen []netip.Addr
	Port   uint16
	// Location6 and Location4 are the addresses named in the LOCATION of
	// answers and announcements over IPv6 and IPv4; both are among
	// Listen. Without Location4, IPv4 searches are not answered.
	Location6, Location4 netip.Addr
	// UUID is the root device's UUID (its UDN without "uuid:"), stable
	// across restarts; the embedded devices' UUIDs derive from it.
	UUID string
	// PresentationURL is the device's web page: the dashboard.
	PresentationURL string
}

// Enabled reports whether the plan serves anything.
func (p Plan) Enabled() bool { return len(p.Listen) > 0 }

// Equal reports whether p and o serve the same.
func (p Plan) Equal(o Plan) bool {
	return slices.Equal(p.Listen, o.Listen) && p.Port == o.Port && p.Location6 == o.Location6 &&
		p.Location4 == o.Location4 && p.UUID == o.UUID && p.PresentationURL == o.PresentationURL
}

// Validate checks a plan before the service takes it.
func Validate(p Plan) error {
	if !p.Enabled() {
		return nil
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("upnp: "+format, args...)) }
	if p.Port == 0 {
		bad("no port")
	}
	for _, a := range p.Listen {
		if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a.Zone() != "" {
			bad("listen address %v: want a unicast address of the gizmo without a zone", a)
		}
	}
	if !p.Location6.IsValid() || !p.Location6.Is6() || p.Location6.Is4In6() || !slices.Contains(p.Listen, p.Location6) {
		bad("IPv6 location %v: want one of the listen addresses", p.Location6)
	}
	if p.Location4.IsValid() && (!p.Location4.Is4() || !slices.Contains(p.Listen, p.Location4)) {
		bad("IPv4 location %v: want one of the listen addresses", p.Location4)
	}
	if _, err := uuid.Parse(p.UUID); err != nil {
		bad("UUID %q: %v", p.UUID, err)
	}
	return errors.Join(errs...)
}
