package dhcp4

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkCompact10k measures one compaction of a 10,000-lease table: the
// snapshot, the encoding and the atomic write with fsync.
func BenchmarkCompact10k(b *testing.B) {
	e := newEngine(quietLog())
	var recs []leaseRecord
	for i := range 10000 {
		recs = append(recs, leaseRecord{
			MAC: net.HardwareAddr{2, 0, 0, byte(i >> 16), byte(i >> 8), byte(i)}.String(),
			IP:  netip.AddrFrom4([4]byte{127, 16, byte(i >> 8), byte(i)}), Hostname: "host", Expires: t0.Add(time.Hour),
		})
	}
	e.restore(recs)
	store, _ := openStore(b.TempDir(), quietLog())
	b.ResetTimer()
	for b.Loop() {
		if err := store.compact(e.snapshot()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJournalBatch64 measures one group commit of 64 ACKs: the journal
// append and its fdatasync.
func BenchmarkJournalBatch64(b *testing.B) {
	store, _ := openStore(b.TempDir(), quietLog())
	var recs []leaseRecord
	for i := range 64 {
		recs = append(recs, leaseRecord{
			MAC: net.HardwareAddr{2, 0, 0, 0, 0, byte(i)}.String(),
			IP:  netip.AddrFrom4([4]byte{127, 16, 0, byte(i)}), Expires: t0.Add(time.Hour),
		})
	}
	for b.Loop() {
		if err := store.append(recs); err != nil {
			b.Fatal(err)
		}
	}
}
