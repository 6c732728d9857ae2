package series

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

func TestAddFoldsDeltasIntoBuckets(t *testing.T) {
	s := New([]Resolution{{Name: "10s", Step: 10 * time.Second, Len: 3, HostLen: 3}, {Name: "1m", Step: time.Minute, Len: 10}})
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	mac := "02:00:00:00:00:10"
	at := func(sec int, v6, nat64 uint64) Sample {
		return Sample{At: t0.Add(time.Duration(sec) * time.Second),
			Total: Categories{NativeIPv6: v6, NAT64DNS64: nat64},
			Hosts: map[string]Categories{mac: {NativeIPv6: v6, NAT64DNS64: nat64}}}
	}
	s.Add(at(0, 1000, 100)) // baseline only
	s.Add(at(10, 1500, 100))
	s.Add(at(20, 1600, 300))
	s.Add(at(25, 1700, 300))
	pts, err := s.HostSeries("10s", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 2 || pts[0].Total.NativeIPv6 != 500 || pts[1].Total.NativeIPv6 != 200 || pts[1].Total.NAT64DNS64 != 200 {
		t.Fatalf("10s points = %+v", pts)
	}
	if pts[1].Hosts[mac].NativeIPv6 != 200 {
		t.Errorf("per-host delta = %+v", pts[1].Hosts)
	}
	pts, _ = s.HostSeries("1m", time.Time{})
	if len(pts) != 1 || pts[0].Total.Total() != 900 {
		t.Errorf("1m points = %+v", pts)
	}
	if pts[0].Hosts != nil {
		t.Errorf("the 1m ring keeps no per-host data, got %+v", pts[0].Hosts)
	}
	if pts, _ := s.Series("10s", time.Time{}); pts[1].Hosts != nil {
		t.Errorf("Series returned per-host data: %+v", pts[1].Hosts)
	}
	// A counter that goes backwards (its source restarted) counts from zero.
	s.Add(at(30, 50, 0))
	total := s.Sum(t0)
	if total.NativeIPv6 != 750 {
		t.Errorf("after a counter reset: native = %d, want 750", total.NativeIPv6)
	}
	// The 10 s ring keeps only 3 buckets.
	for i := 4; i < 10; i++ {
		s.Add(at(i*10, 50+uint64(i), 0))
	}
	if pts, _ := s.Series("10s", time.Time{}); len(pts) != 3 {
		t.Errorf("ring holds %d points, want 3", len(pts))
	}
	if _, err := s.Series("1d", time.Time{}); err == nil {
		t.Error("unknown resolution accepted")
	}
}

func TestSumUsesTheRingThatReachesBack(t *testing.T) {
	s := New([]Resolution{{Name: "10s", Step: 10 * time.Second, Len: 2}, {Name: "1m", Step: time.Minute, Len: 100}})
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for i := 0; i <= 30; i++ {
		s.Add(Sample{At: t0.Add(time.Duration(i) * 10 * time.Second), Total: Categories{NativeIPv6: uint64(i) * 10}})
	}
	total := s.Sum(t0)
	if total.NativeIPv6 != 300 {
		t.Errorf("Sum since start = %d, want 300 (from the 1m ring)", total.NativeIPv6)
	}
	total = s.Sum(t0.Add(290 * time.Second))
	if total.NativeIPv6 != 20 {
		t.Errorf("Sum of the last two buckets = %d, want 20 (from the 10s ring)", total.NativeIPv6)
	}
}

func TestSaveRestore(t *testing.T) {
	s := New(DefaultResolutions)
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	s.Add(Sample{At: t0, Total: Categories{NAT44: 1}})
	s.Add(Sample{At: t0.Add(time.Minute), Total: Categories{NAT44: 11}})
	b, err := json.Marshal(s.Save())
	if err != nil {
		t.Fatal(err)
	}
	var saved Saved
	if err := json.Unmarshal(b, &saved); err != nil {
		t.Fatal(err)
	}
	r := New(DefaultResolutions)
	r.Restore(saved)
	total := r.Sum(t0)
	if total.NAT44 != 10 {
		t.Errorf("restored NAT44 = %d, want 10", total.NAT44)
	}
}

// A saved file is outside input: out-of-order and duplicate buckets are put
// in order and dropped, and per-host data is kept only where the ring keeps
// it, so a file with more loads into bounded memory.
func TestRestoreOrdersAndBoundsSavedBuckets(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	hosts := map[string]Categories{"02:00:00:00:00:10": {NAT44: 5}}
	saved := Saved{Rings: map[string][]Point{
		"10s": {{Start: t0.Add(20 * time.Second), Total: Categories{NAT44: 2}, Hosts: hosts}, {Start: t0, Total: Categories{NAT44: 1}, Hosts: hosts}, {Start: t0, Total: Categories{NAT44: 9}}},
		"1h":  {{Start: t0, Total: Categories{NAT44: 3}, Hosts: hosts}},
	}}
	s := New([]Resolution{{Name: "10s", Step: 10 * time.Second, Len: 10, HostLen: 10}, {Name: "1h", Step: time.Hour, Len: 10}})
	s.Restore(saved)
	pts, _ := s.HostSeries("10s", time.Time{})
	if len(pts) != 2 || !pts[0].Start.Equal(t0) || pts[0].Total.NAT44 != 1 || pts[1].Total.NAT44 != 2 || pts[1].Hosts["02:00:00:00:00:10"].NAT44 != 5 {
		t.Errorf("10s ring after restore: %+v", pts)
	}
	pts, _ = s.HostSeries("1h", time.Time{})
	if len(pts) != 1 || pts[0].Hosts != nil || pts[0].Total.NAT44 != 3 {
		t.Errorf("1h ring after restore: %+v", pts)
	}
}

// The 1 h ring keeps each host's traffic for 7 days (168 buckets), and
// only the totals before that.
func TestHourlyRingKeepsHostsForAWeek(t *testing.T) {
	s := New(DefaultResolutions)
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	mac := "02:00:00:00:00:10"
	for h := 0; h <= 10*24; h++ {
		v := uint64(h) * 100
		s.Add(Sample{At: t0.Add(time.Duration(h) * time.Hour), Total: Categories{NativeIPv6: v}, Hosts: map[string]Categories{mac: {NativeIPv6: v}}})
	}
	pts, err := s.HostSeries("1h", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 10*24 {
		t.Fatalf("%d hourly points, want %d", len(pts), 10*24)
	}
	withHosts := 0
	for i, p := range pts {
		if p.Hosts != nil {
			withHosts++
			if i < len(pts)-7*24 {
				t.Errorf("point %d (%v) older than 7 days keeps hosts", i, p.Start)
			}
		}
	}
	if withHosts != 7*24 {
		t.Errorf("%d hourly points keep hosts, want %d", withHosts, 7*24)
	}
	hp, err := s.HostPoints("1h", mac, t0.Add(9*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(hp) != 25 || hp[0].Total.NativeIPv6 != 100 || !hp[0].Start.Equal(t0.Add(9*24*time.Hour)) {
		t.Errorf("HostPoints since day 9: %d points, want 25 (hours 216 to 240); the first %+v", len(hp), hp[0])
	}
	if hp, _ := s.HostPoints("1h", mac, time.Time{}); len(hp) != 7*24 {
		t.Errorf("HostPoints since the beginning: %d points, want the week that keeps hosts", len(hp))
	}
	if hp, _ := s.HostPoints("1m", mac, time.Time{}); len(hp) != 0 {
		t.Errorf("the 1m ring keeps no hosts, got %d points", len(hp))
	}
	// Saved and restored, the week of per-host data stays.
	r := New(DefaultResolutions)
	r.Restore(s.Save())
	if hp, _ := r.HostPoints("1h", mac, time.Time{}); len(hp) != 7*24 || hp[len(hp)-1].Total.NativeIPv6 != 100 {
		t.Errorf("after restore: %d points", len(hp))
	}
}

// However many hosts a LAN shows, a bucket keeps MaxHostsPerBucket of
// them: the least busy are added up under Other, counted, and the totals
// stay right.
func TestHostsPerBucketAreCapped(t *testing.T) {
	s := New([]Resolution{{Name: "10s", Step: 10 * time.Second, Len: 10, HostLen: 10}})
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	n := MaxHostsPerBucket + 100
	base := map[string]Categories{}
	next := map[string]Categories{}
	var want uint64
	for i := range n {
		mac := fmt.Sprintf("02:00:00:00:%02x:%02x", i/256, i%256)
		base[mac] = Categories{}
		next[mac] = Categories{NAT44: uint64(i + 1)}
		want += uint64(i + 1)
	}
	s.Add(Sample{At: t0, Hosts: base})
	s.Add(Sample{At: t0.Add(10 * time.Second), Hosts: next})
	s.Add(Sample{At: t0.Add(15 * time.Second), Hosts: next}) // same bucket, nothing new
	pts, _ := s.HostSeries("10s", time.Time{})
	if len(pts) != 1 || len(pts[0].Hosts) != MaxHostsPerBucket {
		t.Fatalf("%d points, %d hosts in the bucket, want %d", len(pts), len(pts[0].Hosts), MaxHostsPerBucket)
	}
	var got uint64
	for _, c := range pts[0].Hosts {
		got += c.NAT44
	}
	if got != want {
		t.Errorf("hosts add up to %d, want %d", got, want)
	}
	if busiest := fmt.Sprintf("02:00:00:00:%02x:%02x", (n-1)/256, (n-1)%256); pts[0].Hosts[busiest].NAT44 != uint64(n) {
		t.Errorf("the busiest host %s was folded: %+v", busiest, pts[0].Hosts[busiest])
	}
	if st := s.Stats(); st.HostsFolded != uint64(n-MaxHostsPerBucket+1) || st.HostEntries != MaxHostsPerBucket {
		t.Errorf("stats %+v, want %d folded, %d entries", st, n-MaxHostsPerBucket+1, MaxHostsPerBucket)
	}
}
