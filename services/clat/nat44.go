package clat

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"codeberg.org/monostack/gizmo/internal/nfttable"
)

// NAT44Table is the nftables table (family ip) in which the CLAT maps the
// legacy hosts' IPv4 to its own address on clat0: RFC 6877 §6.3 lets a
// CLAT that has no dedicated /64 per host translate one IPv4 address,
// with NAT44 in front. The firewall's table masquerades only out of the
// WAN interface, so the two never act on the same packet.
const NAT44Table = "gizmo_clat"

// installNAT44 replaces the table in one batch: every IPv4 packet routed
// out of clat0 gets the CLAT's address as source (masquerade picks
// clat0's only address) and a port of the kernel's choice. conntrack
// reverses it for the replies clat_in hands to the stack.
func installNAT44() error {
	return nat44Batch("install", func(c *nftables.Conn, t *nftables.Table) {
		c.AddTable(t)
		accept := nftables.ChainPolicyAccept
		ch := c.AddChain(&nftables.Chain{
			Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource,
			Policy: &accept,
		})
		name := make([]byte, 16)
		copy(name, Interface)
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: name},
			&expr.Masq{},
		}})
	})
}

// removeNAT44 deletes the table if it is there.
func removeNAT44() error {
	return nat44Batch("remove", func(*nftables.Conn, *nftables.Table) {})
}

// nat44Batch deletes the table, if it is there, then lets fill add what
// it should hold, all in one batch, so that no packet sees a half-built
// table.
func nat44Batch(verb string, fill func(*nftables.Conn, *nftables.Table)) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("clat: nftables: %w", err)
	}
	defer c.CloseLasting()
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: NAT44Table}
	nfttable.Remove(c, t)
	fill(c, t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("clat: %s %s: %w", verb, NAT44Table, err)
	}
	return nil
}
