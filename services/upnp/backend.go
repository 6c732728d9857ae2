package upnp

import (
	"fmt"
	"net/netip"
	"time"
)

// Backend is the daemon as the service sees it. It owns the pinholes,
// decides who may open what, and turns them into firewall rules; the
// service parses and answers the protocol. Its methods may be called from
// many request goroutines at once.
type Backend interface {
	// AddPinhole opens a pinhole, or renews the pinhole with the same
	// five-tuple (WANIPv6FirewallControl:1 §2.6.3.3: the existing one's
	// lease is extended and its UniqueID returned).
	AddPinhole(r PinholeRequest) (Pinhole, error)
	// UpdatePinhole gives the pinhole id a new lease; source is the
	// control point's address.
	UpdatePinhole(source netip.Addr, id uint16, lease time.Duration) (Pinhole, error)
	// DeletePinhole closes the pinhole id.
	DeletePinhole(source netip.Addr, id uint16) error
	// Pinhole returns the pinhole id for its own address source.
	Pinhole(source netip.Addr, id uint16) (Pinhole, error)
	// PinholesAllowed reports whether the host at source may open
	// pinholes (GetFirewallStatus's InboundPinholeAllowed).
	PinholesAllowed(source netip.Addr) bool
}

// PinholeRequest is an AddPinhole call, its arguments parsed.
type PinholeRequest struct {
	// Source is the control point: the address the request came from.
	Source netip.Addr
	// RemoteHost and RemotePort are who may come in; invalid and 0 are
	// the wildcards.
	RemoteHost netip.Addr
	RemotePort uint16
	// Client and Port are InternalClient and InternalPort; Proto is 6
	// (TCP) or 17 (UDP).
	Client netip.Addr
	Port   uint16
	Proto  uint8
	// Lease is LeaseTime, 1 s to 86400 s as asked; the Backend may clamp.
	Lease time.Duration
}

// Pinhole is an open pinhole as the Backend reports it: the host's
// address, protocol and port it opens until Expires.
type Pinhole struct {
	ID      uint16
	Client  netip.Addr
	Proto   uint8
	Port    uint16
	Expires time.Time
}

// RefusalKind says why a Backend refused; the service answers each with
// its UPnP error code.
type RefusalKind int

const (
	// NotAuthorized: the control point may not do this (606 Action not
	// authorized).
	NotAuthorized RefusalKind = iota
	// NotAllowed: the owner does not let apps on this host open pinholes
	// (703 InboundPinholeNotAllowed, the host's InboundPinholeAllowed is 0).
	NotAllowed
	// SpaceExhausted: the host or the gizmo holds as many pinholes as it
	// may (701 PinholeSpaceExhausted).
	SpaceExhausted
	// NoSuchEntry: no pinhole has this UniqueID (704 NoSuchEntry).
	NoSuchEntry
)

// Refusal is a Backend's no, with a short reason for the counters and the
// log ("policy_off", "host_full").
type Refusal struct {
	Kind   RefusalKind
	Reason string
}

func (r *Refusal) Error() string { return fmt.Sprintf("upnp: refused: %s", r.Reason) }

// code is the UPnP error code that answers the refusal.
func (r *Refusal) code() int {
	switch r.Kind {
	case NotAllowed:
		return errInboundPinholeNotAllowed
	case SpaceExhausted:
		return errPinholeSpaceExhausted
	case NoSuchEntry:
		return errNoSuchEntry
	}
	return errActionNotAuthorized
}
