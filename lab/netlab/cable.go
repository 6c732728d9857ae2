package netlab

import (
	"context"
	"fmt"
)

// SetISPLink plugs (up) or unplugs (down) the cable between gz-isp and
// gz-gizmo: it sets the ISP's end of the veth up or down, so that the
// gizmo's port loses or regains its carrier while the gizmo itself may keep
// its end up (role detection brings ports up). The ISP's addresses stay
// (keep_addr_on_down), so that its daemons keep their sockets; the route of
// the delegations, which the kernel drops with the link, is put back when
// the cable is plugged in, as an ISP's router would.
func (l *Lab) SetISPLink(ctx context.Context, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	if out, err := l.Exec(ctx, NSISP, "sysctl", "-q", "-w", "net.ipv6.conf."+ISPWAN+".keep_addr_on_down=1"); err != nil {
		return fmt.Errorf("netlab: keep the ISP's addresses on down: %v: %s", err, out)
	}
	if out, err := l.Exec(ctx, NSISP, "ip", "link", "set", ISPWAN, state); err != nil {
		return fmt.Errorf("netlab: ISP link %s: %v: %s", state, err, out)
	}
	if up {
		if out, err := l.Exec(ctx, NSISP, "ip", "-6", "route", "replace", PDAggregate.String(), "via", GizmoWANLinkLocal.String(), "dev", ISPWAN); err != nil {
			return fmt.Errorf("netlab: route the delegations to the gizmo again: %v: %s", err, out)
		}
	}
	return nil
}
