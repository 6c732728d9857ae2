// Package nfttable queues, in an nftables batch, the replacement or the
// removal of one of the gizmo's tables, whether the table is there or not.
// The kernel commits a batch at once (one nfnetlink transaction), so
// packets see the old table or the new one, never none or half of one,
// and a table left by a crashed daemon is replaced, not added to.
package nfttable

import "github.com/google/nftables"

// Fresh queues on c the removal of table t, with everything in it, and its
// creation again, empty; the caller queues what the new table holds and
// flushes.
func Fresh(c *nftables.Conn, t *nftables.Table) *nftables.Table {
	Remove(c, t)
	return c.AddTable(t)
}

// Remove queues on c the removal of table t. Adding it first, in the same
// batch, keeps the delete from failing when there is no such table.
func Remove(c *nftables.Conn, t *nftables.Table) {
	c.AddTable(t)
	c.DelTable(t)
}
