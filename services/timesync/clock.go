package timesync

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// Clock is the wall clock the service reads and sets. The system clock is
// the default; tests use a fake, so that they never set the host's clock.
type Clock interface {
	Now() time.Time
	// Step adds d to the clock at once.
	Step(d time.Duration) error
	// Slew adds d to the clock gradually.
	Slew(d time.Duration) error
}

// adjtimex(2) mode bits (linux/timex.h); golang.org/x/sys does not name
// them.
const (
	adjSetOffset         = 0x0100
	adjNano              = 0x2000
	adjOffsetSingleshot  = 0x8001
	maxSinglesShotMicros = 500000 // the kernel's adjtime range, ±0.5 s
)

// SystemClock is CLOCK_REALTIME. Setting it needs CAP_SYS_TIME.
type SystemClock struct{}

func (SystemClock) Now() time.Time { return time.Now() }

// Step adds d atomically (ADJ_SETOFFSET), so that no time passes between
// reading and writing the clock.
func (SystemClock) Step(d time.Duration) error {
	sec, nsec := int64(d/time.Second), int64(d%time.Second)
	if nsec < 0 { // the kernel wants 0 <= nsec < 1e9
		sec, nsec = sec-1, nsec+int64(time.Second)
	}
	tx := unix.Timex{Modes: adjSetOffset | adjNano, Time: unix.Timeval{Sec: sec, Usec: nsec}}
	if _, err := unix.Adjtimex(&tx); err != nil {
		return fmt.Errorf("timesync: step the clock by %v: %w", d, err)
	}
	return nil
}

// Slew hands d to the kernel's adjtime (ADJ_OFFSET_SINGLESHOT), which
// skews the clock by 500 ppm until it is absorbed; at most ±0.5 s, which is
// what the policy ever slews.
func (SystemClock) Slew(d time.Duration) error {
	us := min(max(d.Microseconds(), -maxSinglesShotMicros), maxSinglesShotMicros)
	tx := unix.Timex{Modes: adjOffsetSingleshot, Offset: us}
	if _, err := unix.Adjtimex(&tx); err != nil {
		return fmt.Errorf("timesync: slew the clock by %v: %w", d, err)
	}
	return nil
}
