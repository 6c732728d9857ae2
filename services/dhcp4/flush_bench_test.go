package dhcp4

import (
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkFlush10k measures one group commit of a 10,000-lease table: the
// snapshot, the encoding and the atomic write with fsync.
func BenchmarkFlush10k(b *testing.B) {
	e := newEngine(quietLog())
	var recs []leaseRecord
	for i := range 10000 {
		recs = append(recs, leaseRecord{
			MAC: net.HardwareAddr{2, 0, 0, byte(i >> 16), byte(i >> 8), byte(i)}.String(),
			IP:  netip.AddrFrom4([4]byte{127, 16, byte(i >> 8), byte(i)}), Hostname: "host", Expires: t0.Add(time.Hour),
		})
	}
	e.restore(recs)
	path := filepath.Join(b.TempDir(), LeaseFile)
	b.ResetTimer()
	for b.Loop() {
		e.markDirty()
		snap, _, _ := e.takeBatch()
		if err := writeLeases(path, snap); err != nil {
			b.Fatal(err)
		}
	}
}
