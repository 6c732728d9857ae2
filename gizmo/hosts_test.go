package main

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/derive"
)

// floodMAC is the i-th locally administered unicast MAC address of a flood.
func floodMAC(i int) net.HardwareAddr {
	mac := net.HardwareAddr{0x02, 0xf1, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(mac[2:], uint32(i))
	return mac
}

// floodLinkLocal is the link-local address a flood's i-th host solicits from.
func floodLinkLocal(i int) netip.Addr {
	b := netip.MustParseAddr("fe80::").As16()
	binary.BigEndian.PutUint32(b[12:], uint32(i)+1)
	return netip.AddrFrom16(b)
}

// A LAN device that sends thousands of Router Solicitations from random
// MACs must not grow the host table without bound, nor the state file: a
// host nobody configured and that announced no name is nothing to keep
// across a reboot, so gizmo.json is not even rewritten.
func TestHostFloodStaysBounded(t *testing.T) {
	d := testDaemon(t)
	t0 := time.Now() // the flood's hosts are active: none displaces another
	d.dirty = true   // the first write of a run, as run does
	if err := d.flushDurable(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(d.cfg.StateDir, durableFile)
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	const flood = 3000
	for i := range flood {
		// Each a well-formed RS: the frame's source, its option and its
		// link-local address agree.
		d.sawHost(derive.Sighting{MAC: floodMAC(i).String(), Addr: floodLinkLocal(i), At: t0.Add(time.Duration(i) * time.Millisecond), FromFrame: true})
	}
	if n := len(d.st.Hosts); n > derive.MaxHosts {
		t.Errorf("%d hosts after %d solicitations from random MACs; the table must stay bounded", n, flood)
	}
	if got, want := d.st.HostTable.Refused, uint64(flood-derive.MaxHosts); got != want {
		t.Errorf("%d newcomers refused, want %d (the flood's hosts that did not fit)", got, want)
	}
	if err := d.flushDurable(); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Errorf("gizmo.json was rewritten (%d → %d bytes) though nothing durable changed", before.Size(), after.Size())
	}
	if after.Size() > 4096 {
		t.Errorf("gizmo.json is %d bytes after the flood", after.Size())
	}
}

// sawFrame records that a frame from mac showed addr at time at, as the
// neighbour watch reports it.
func (d *daemon) sawFrame(mac net.HardwareAddr, addr netip.Addr, at time.Time) {
	d.sawHost(derive.Sighting{MAC: mac.String(), Addr: addr, At: at, FromFrame: true})
}
