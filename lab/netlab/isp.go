package netlab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// The ISP's misbehaviours that a DHCPv6-PD client must survive (RFC 8415
// §18.2.4–§18.2.5: Renew and Rebind go unanswered; §18.2.10.1: the server
// stops delegating): a filter that eats Kea's DHCPv6 replies on the WAN
// link, and a Kea that stops delegating.

// replyLossTable is the nftables table in gz-isp that drops Kea's DHCPv6
// messages to the gizmo while DropDHCPv6Replies is on.
const replyLossTable = "gizmo-lab-dhcp6-loss"

// DropDHCPv6Replies makes every DHCPv6 message from the ISP's server port
// (547) to the gizmo's client port (546) on the WAN link vanish in gz-isp's
// output path (drop true), or lets them through again (drop false). Kea still
// receives and processes the gizmo's Solicits, Renews and Rebinds, and
// extends its own leases; only its answers are lost, as with a broken
// return path. Both directions are idempotent.
func (l *Lab) DropDHCPv6Replies(ctx context.Context, drop bool) error {
	// Deleting a missing table fails, so the rule set is always replaced
	// as a whole: add (no-op if present), delete, then re-add if wanted.
	script := "add table inet " + replyLossTable + "\ndelete table inet " + replyLossTable + "\n"
	if drop {
		script += fmt.Sprintf(`table inet %s {
	chain out {
		type filter hook output priority 0; policy accept;
		oifname "%s" udp sport 547 udp dport 546 counter drop
	}
}
`, replyLossTable, ISPWAN)
	}
	f, err := os.CreateTemp(l.runDir, "nft-*.conf")
	if err != nil {
		return fmt.Errorf("netlab: dhcpv6 reply loss: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(script); err != nil {
		f.Close()
		return fmt.Errorf("netlab: dhcpv6 reply loss: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("netlab: dhcpv6 reply loss: %w", err)
	}
	if _, err := Exec(ctx, NSISP, "nft", "-f", f.Name()); err != nil {
		return fmt.Errorf("netlab: dhcpv6 reply loss: %w", err)
	}
	l.logger.Info("ISP DHCPv6 replies", "dropped", drop)
	return nil
}

var nftCounter = regexp.MustCompile(`counter packets (\d+) bytes`)

// DroppedDHCPv6Replies returns how many DHCPv6 messages to the gizmo the
// filter of DropDHCPv6Replies has dropped since it was last turned on (0
// while it is off).
func (l *Lab) DroppedDHCPv6Replies(ctx context.Context) (uint64, error) {
	out, err := Exec(ctx, NSISP, "nft", "list", "table", "inet", replyLossTable)
	if err != nil {
		if strings.Contains(string(out), "No such file or directory") {
			return 0, nil
		}
		return 0, fmt.Errorf("netlab: dhcpv6 reply loss: %w", err)
	}
	m := nftCounter.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("netlab: dhcpv6 reply loss: no counter in %q", out)
	}
	return strconv.ParseUint(string(m[1]), 10, 64)
}

// An ISPDelegation is what the ISP's DHCPv6 server does about prefix
// delegation (SetDelegation).
type ISPDelegation int

const (
	// DelegationOn: the scenario's configuration, delegating from the
	// current pool (PDPool).
	DelegationOn ISPDelegation = iota
	// DelegationNoPool: Kea still serves the WAN link but has no pd-pool
	// left. Kea 2.2 answers a Renew for a binding it does not know by
	// trying to allocate (RFC 8415 §18.3.4 lets it), so the gizmo gets
	// NoPrefixAvail.
	DelegationNoPool
	// DelegationUnknownLink: Kea has no subnet for the WAN link any more
	// (the subnet is tied to another interface), as when the customer
	// line moved to a server that does not know it: a Renew gets
	// NoBinding (RFC 8415 §18.3.4), a Rebind no answer (§18.3.5).
	DelegationUnknownLink
)

func (d ISPDelegation) String() string {
	switch d {
	case DelegationOn:
		return "on"
	case DelegationNoPool:
		return "no-pool"
	case DelegationUnknownLink:
		return "unknown-link"
	}
	return fmt.Sprintf("ISPDelegation(%d)", int(d))
}

// SetDelegation restarts the ISP's DHCPv6 server with delegation d. Every
// mode other than DelegationOn also forgets all DHCPv6 leases, so that the
// gizmo's binding is gone; DelegationOn keeps whatever leases Kea has.
func (l *Lab) SetDelegation(ctx context.Context, d ISPDelegation) error {
	if l.scenario.DelegatedLength == 0 {
		return errors.New("netlab: set delegation: the scenario delegates nothing")
	}
	pool := l.PDPool()
	err := l.restartKea6(ctx, d != DelegationOn, func(p keaPaths) ([]byte, error) {
		b, err := l.kea6Config(p, pool)
		switch {
		case err != nil:
		case d == DelegationNoPool:
			// A nameless scenario with delegated length 0 strips the pd-pools.
			b, err = Scenario{Name: "delegation-off"}.kea6(b)
		case d == DelegationUnknownLink:
			b, err = kea6MoveSubnet(b, ISPInet)
		}
		return b, err
	}, func() {})
	if err != nil {
		return fmt.Errorf("netlab: set delegation %s: %w", d, err)
	}
	l.logger.Info("ISP prefix delegation", "mode", d, "pool", pool)
	return nil
}

// kea6MoveSubnet ties every subnet of a Kea DHCPv6 config to interface
// ifname, so that no subnet matches clients on the interface Kea listens on.
func kea6MoveSubnet(conf []byte, ifname string) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(conf, &m); err != nil {
		return nil, fmt.Errorf("kea6 config: %w", err)
	}
	d6, _ := m["Dhcp6"].(map[string]any)
	subnets, _ := d6["subnet6"].([]any)
	if len(subnets) == 0 {
		return nil, errors.New("kea6 config: no subnet6")
	}
	for _, sub := range subnets {
		if sm, ok := sub.(map[string]any); ok {
			sm["interface"] = ifname
		}
	}
	return json.MarshalIndent(m, "", "  ")
}
