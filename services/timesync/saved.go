package timesync

import (
	"path/filepath"
	"time"

	"codeberg.org/monostack/gizmo/internal/persist"
)

// ClockFile holds the saved time in the state directory.
const ClockFile = "clock.json"

// saveInterval is how often the time is saved: a power cut loses at most
// this much, so a board without a real-time clock restarts at most this far
// behind the time it was switched off.
const saveInterval = 10 * time.Minute

type savedClock struct {
	Time time.Time `json:"time"`
	// Synced says whether the clock had been synchronised when it was
	// saved, for whoever reads the file.
	Synced bool `json:"synced"`
}

func loadSaved(dir string) (time.Time, error) {
	var s savedClock
	found, err := persist.ReadJSON(filepath.Join(dir, ClockFile), &s)
	if err != nil || !found {
		return time.Time{}, err
	}
	return s.Time.Round(0), nil
}

func storeSaved(dir string, t time.Time, synced bool) error {
	return persist.WriteJSON(filepath.Join(dir, ClockFile), savedClock{Time: t.UTC().Round(0), Synced: synced})
}

// restoreStep is how far the clock must step forward to the saved time at
// start: a board never starts earlier than the time it last saved, so a
// clock before it is wrong (a Pi starts at its image's build time). A
// clock later than the saved time is left alone: it may be right (a real
// -time clock, a short power cut), and NTP corrects it either way.
func restoreStep(now, saved time.Time) time.Duration {
	if saved.IsZero() || !now.Before(saved) {
		return 0
	}
	return saved.Sub(now.Round(0))
}

// nextSave is the time to write: never earlier than what the file holds
// unless the clock is synchronised, so that an unsynchronised clock (still
// at its build time because restoring failed) cannot pull the floor back.
func nextSave(now, saved time.Time, synced bool) time.Time {
	now = now.Round(0)
	if !synced && now.Before(saved) {
		return saved
	}
	return now
}
