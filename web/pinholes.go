package web

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

// PinholeJSON is one pinhole an app opened on a host (UPnP), in
// GET /api/hosts.
type PinholeJSON struct {
	ID       uint16     `json:"id"`
	Protocol string     `json:"protocol"` // "tcp" or "udp"
	Port     uint16     `json:"port"`
	Address  netip.Addr `json:"address"`
	// RemoteHost and RemotePort are what the app asked to let in (absent:
	// anyone); the firewall opens the port to every remote.
	RemoteHost       netip.Addr `json:"remote_host,omitzero"`
	RemotePort       uint16     `json:"remote_port,omitempty"`
	Expires          time.Time  `json:"expires"`
	RemainingSeconds int64      `json:"remaining_seconds"`
}

// pinholesOf are a host's pinholes still open at now, in the order they
// were opened.
func pinholesOf(ps []state.Pinhole, now time.Time) []PinholeJSON {
	out := []PinholeJSON{}
	for _, p := range ps {
		left := p.Expires.Sub(now)
		if left <= 0 {
			continue
		}
		out = append(out, PinholeJSON{
			ID: p.ID, Protocol: protoName(p.Proto), Port: p.Port, Address: p.Client,
			RemoteHost: p.RemoteHost, RemotePort: p.RemotePort,
			Expires: p.Expires, RemainingSeconds: int64(left / time.Second),
		})
	}
	return out
}

func protoName(p uint8) string {
	switch p {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	}
	return strconv.Itoa(int(p))
}

// pinholeLine is a pinhole as the hosts page shows it: "tcp/8090 on
// 2001:db8::5, from anyone, 59 min left".
func pinholeLine(p PinholeJSON) string {
	remote := "from anyone"
	if p.RemoteHost.IsValid() || p.RemotePort != 0 {
		host, port := "any address", "any port"
		if p.RemoteHost.IsValid() {
			host = p.RemoteHost.String()
		}
		if p.RemotePort != 0 {
			port = "port " + strconv.Itoa(int(p.RemotePort))
		}
		remote = fmt.Sprintf("asked for %s, %s (open to anyone)", host, port)
	}
	return fmt.Sprintf("%s/%d on %s, %s, %s left", p.Protocol, p.Port, p.Address, remote, remaining(time.Duration(p.RemainingSeconds)*time.Second))
}

func remaining(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "under a minute"
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d/time.Minute))
	}
	return fmt.Sprintf("%d h %d min", int(d/time.Hour), int(d%time.Hour/time.Minute))
}
