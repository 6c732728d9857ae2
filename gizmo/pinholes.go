package main

import (
	"errors"
	"net/netip"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/derive"
	"codeberg.org/monostack/gizmo/gizmo/plan"
	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/services/upnp"
)

// The daemon is the UPnP service's Backend: the pinholes live in its
// state, the plan decides who may open what (plan.PinholeAdd), and the
// firewall's plan turns them into rules.
var _ upnp.Backend = (*daemon)(nil)

// sightingWaits and sightingWait bound how long an AddPinhole from an
// address no host was seen with yet waits for the sighting. The gizmo's
// kernel resolves the address to answer the request's TCP handshake, but
// the neighbour watch reports it from another goroutine, which a request
// can overtake.
const (
	sightingWaits = 5
	sightingWait  = 100 * time.Millisecond
)

// AddPinhole implements upnp.Backend.
func (d *daemon) AddPinhole(r upnp.PinholeRequest) (upnp.Pinhole, error) {
	var (
		mac string
		p   state.Pinhole
		err error
	)
	for try := 0; ; try++ {
		d.mu.Lock()
		mac, p, err = plan.PinholeAdd(&d.st, r, time.Now())
		if err == nil {
			derive.RecordPinhole(&d.st, mac, p)
		}
		d.mu.Unlock()
		if !refusedFor(err, plan.PinholeUnknownHost) || try == sightingWaits {
			break
		}
		time.Sleep(sightingWait)
	}
	if err != nil {
		return upnp.Pinhole{}, err
	}
	d.log.Info("pinhole opened", "host", mac, "id", p.ID, "client", p.Client, "proto", p.Proto, "port", p.Port,
		"remote", p.RemoteHost, "remote_port", p.RemotePort, "expires", p.Expires)
	d.replan()
	return pinholeOf(p), nil
}

// UpdatePinhole implements upnp.Backend.
func (d *daemon) UpdatePinhole(src netip.Addr, id uint16, lease time.Duration) (upnp.Pinhole, error) {
	d.mu.Lock()
	mac, p, err := plan.PinholeRenew(&d.st, src, id, lease, time.Now())
	if err == nil {
		derive.RecordPinhole(&d.st, mac, p)
	}
	d.mu.Unlock()
	if err != nil {
		return upnp.Pinhole{}, err
	}
	d.log.Debug("pinhole renewed", "host", mac, "id", id, "expires", p.Expires)
	return pinholeOf(p), nil
}

// DeletePinhole implements upnp.Backend.
func (d *daemon) DeletePinhole(src netip.Addr, id uint16) error {
	d.mu.Lock()
	mac, err := plan.PinholeDelete(&d.st, src, id, time.Now())
	if err == nil {
		derive.RemovePinhole(&d.st, mac, id)
	}
	d.mu.Unlock()
	if err != nil {
		return err
	}
	d.log.Info("pinhole closed by its app", "host", mac, "id", id)
	d.replan()
	return nil
}

// Pinhole implements upnp.Backend.
func (d *daemon) Pinhole(src netip.Addr, id uint16) (upnp.Pinhole, error) {
	d.mu.Lock()
	p, err := plan.PinholeOf(&d.st, src, id, time.Now())
	d.mu.Unlock()
	if err != nil {
		return upnp.Pinhole{}, err
	}
	return pinholeOf(p), nil
}

// PinholesAllowed implements upnp.Backend.
func (d *daemon) PinholesAllowed(src netip.Addr) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return plan.PinholesAllowed(&d.st, src, time.Now())
}

func refusedFor(err error, reason string) bool {
	var r *upnp.Refusal
	return errors.As(err, &r) && r.Reason == reason
}

func pinholeOf(p state.Pinhole) upnp.Pinhole {
	return upnp.Pinhole{ID: p.ID, Client: p.Client, Proto: p.Proto, Port: p.Port, Expires: p.Expires}
}
