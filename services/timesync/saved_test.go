package timesync

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/beevik/ntp"

	"codeberg.org/monostack/gizmo/internal/testrun"
)

func TestRestoreStep(t *testing.T) {
	tests := []struct {
		name       string
		now, saved time.Time
		want       time.Duration
	}{
		{"a Pi at its build time steps forward to the saved time", buildTime, realTime, realTime.Sub(buildTime)},
		{"a clock later than the saved time is left to NTP", realTime.Add(time.Hour), realTime, 0},
		{"a clock at the saved time stays", realTime, realTime, 0},
		{"no saved time", buildTime, time.Time{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := restoreStep(tt.now, tt.saved); got != tt.want {
				t.Errorf("restoreStep = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNextSave(t *testing.T) {
	if got := nextSave(buildTime, realTime, false); !got.Equal(realTime) {
		t.Errorf("unsynced clock behind the file: saved %v, want the file's %v kept", got, realTime)
	}
	if got := nextSave(buildTime, realTime, true); !got.Equal(buildTime) {
		t.Errorf("synced clock behind the file: saved %v, want the synced time", got)
	}
	if got := nextSave(realTime.Add(time.Hour), realTime, false); !got.Equal(realTime.Add(time.Hour)) {
		t.Errorf("clock ahead of the file: saved %v", got)
	}
}

// Run restores the saved time at start, and saves at shutdown a time no
// earlier than the file held.
func TestRunRestoresAndSaves(t *testing.T) {
	dir := t.TempDir()
	if err := storeSaved(dir, realTime, true); err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: buildTime}
	s, _ := newTestService(t, clock, dir)
	// The daemon restores before it starts the other services; Run does
	// not restore again.
	s.Restore()
	stop := testrun.Start(t, "Run", s.Run)
	time.Sleep(20 * time.Millisecond)
	clock.mu.Lock()
	if len(clock.steps) != 1 {
		t.Errorf("steps %v, want one restore", clock.steps)
	}
	clock.mu.Unlock()
	if got := s.Stats().Restored; got != realTime.Sub(buildTime) {
		t.Fatalf("restored by %v, want %v", got, realTime.Sub(buildTime))
	}
	if !clock.Now().Equal(realTime) {
		t.Errorf("clock %v after restore, want %v", clock.Now(), realTime)
	}
	// A restored clock is a lower bound, not a synchronised clock.
	if ok, _, _ := s.Synced(); ok {
		t.Error("restoring the saved time counts as synchronised")
	}
	clock.advance(90 * time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	saved, err := loadSaved(dir)
	if err != nil || !saved.Equal(realTime.Add(90*time.Second)) {
		t.Errorf("saved %v (%v) at shutdown, want %v", saved, err, realTime.Add(90*time.Second))
	}
}

// A corrupt file is moved aside and the clock left alone.
func TestCorruptSavedTime(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ClockFile), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: buildTime}
	s, _ := newTestService(t, clock, dir)
	s.restore()
	if len(clock.steps) != 0 {
		t.Errorf("stepped %v from a corrupt file", clock.steps)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ClockFile+".corrupt-*")); len(m) != 1 {
		t.Errorf("corrupt file not moved aside: %v", m)
	}
}

// The first sync saves at once, so that a reboot right after it does not
// start at the build time again.
func TestFirstSyncSaves(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{t: buildTime}
	s, sv := newTestService(t, clock, dir)
	sv.set(ntp1, response(realTime.Sub(buildTime)))
	s.round(context.Background(), Plan{Servers: []netip.Addr{ntp1}})
	saved, err := loadSaved(dir)
	if err != nil || !saved.Equal(realTime) {
		t.Errorf("saved %v (%v) after the first sync, want %v", saved, err, realTime)
	}
}

// Servers arriving in a plan while the clock waits for its first sync are
// asked at once, not after the retry interval.
func TestPlanUpdateWakesThePoller(t *testing.T) {
	clock := &fakeClock{t: buildTime}
	s, sv := newTestService(t, clock, "")
	sv.set(ntp1, response(realTime.Sub(buildTime)))
	testrun.Start(t, "Run", s.Run)
	time.Sleep(50 * time.Millisecond) // the first round finds no servers
	s.Update(Plan{Servers: []netip.Addr{ntp1}})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if ok, _, _ := s.Synced(); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not synced 5 s after the plan named a server; stats %+v", s.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !clock.Now().Equal(realTime) {
		t.Errorf("clock %v, want %v", clock.Now(), realTime)
	}
}

// Every accepted sample is reported with its source and time; a round
// without one reports nothing.
func TestOnSyncReportsEachSync(t *testing.T) {
	clock := &fakeClock{t: buildTime}
	type report struct {
		source string
		at     time.Time
	}
	var got []report
	sv := &servers{resp: map[netip.Addr]*ntp.Response{}, err: map[netip.Addr]error{}}
	s, err := New(Config{
		Clock: clock, query: sv.query, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnSync: func(source string, at time.Time) { got = append(got, report{source, at}) },
	})
	if err != nil {
		t.Fatal(err)
	}
	p := Plan{Servers: []netip.Addr{ntp1}}
	s.round(context.Background(), p)
	if len(got) != 0 {
		t.Fatalf("reported %v without an answer", got)
	}
	sv.set(ntp1, response(realTime.Sub(buildTime)))
	s.round(context.Background(), p)
	clock.advance(time.Minute)
	sv.set(ntp1, response(time.Microsecond))
	s.round(context.Background(), p)
	want := []report{{ntp1.String(), realTime}, {ntp1.String(), realTime.Add(time.Minute)}}
	same := len(got) == len(want)
	for i := 0; same && i < len(got); i++ {
		same = got[i].source == want[i].source && got[i].at.Equal(want[i].at)
	}
	if !same {
		t.Errorf("reported %v, want %v (the step, then a sample within the noise)", got, want)
	}
}
