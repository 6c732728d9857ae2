package nfttable

import (
	"testing"

	"github.com/google/nftables"

	"codeberg.org/monostack/gizmo/internal/testns"
)

// chains returns the names of the chains in the inet table name, nil when
// there is no such table.
func chains(t *testing.T, c *nftables.Conn, name string) []string {
	t.Helper()
	all, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ch := range all {
		if ch.Table.Name == name {
			out = append(out, ch.Name)
		}
	}
	return out
}

func tableExists(t *testing.T, c *nftables.Conn, name string) bool {
	t.Helper()
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if tb.Name == name {
			return true
		}
	}
	return false
}

// Fresh creates the table when it is missing and empties it when it is
// there; Remove deletes it, and is no error when it is missing. Each in
// one batch.
func TestFreshReplacesAndRemoveDeletes(t *testing.T) {
	testns.NeedRoot(t)
	ns := testns.Open(t, testns.New(t, "nfttable"))
	c, err := nftables.New(nftables.WithNetNSFd(int(ns.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseLasting()
	want := &nftables.Table{Family: nftables.TableFamilyINet, Name: "gizmo_test"}

	for _, step := range []struct {
		name       string
		queue      func()
		wantTable  bool
		wantChains int
	}{
		{"Remove of a missing table", func() { Remove(c, want) }, false, 0},
		{"Fresh of a missing table, then a chain in it", func() {
			c.AddChain(&nftables.Chain{Name: "forward", Table: Fresh(c, want)})
		}, true, 1},
		{"Fresh of a table with a chain", func() { Fresh(c, want) }, true, 0},
		{"Remove of the table", func() { Remove(c, want) }, false, 0},
	} {
		step.queue()
		if err := c.Flush(); err != nil {
			t.Fatalf("%s: flush: %v", step.name, err)
		}
		if got := tableExists(t, c, want.Name); got != step.wantTable {
			t.Fatalf("%s: table there = %v, want %v", step.name, got, step.wantTable)
		}
		if got := chains(t, c, want.Name); len(got) != step.wantChains {
			t.Fatalf("%s: chains %v, want %d", step.name, got, step.wantChains)
		}
	}
}
