// Package bpfclock reads the clocks that the eBPF programs stamp their map
// entries with, so that user space compares like with like when it ages
// them.
package bpfclock

import "golang.org/x/sys/unix"

// Boot is CLOCK_BOOTTIME in nanoseconds, the clock bpf_ktime_get_boot_ns
// reads; 0 if it cannot be read.
func Boot() uint64 { return read(unix.CLOCK_BOOTTIME) }

// Monotonic is CLOCK_MONOTONIC in nanoseconds, the clock bpf_ktime_get_ns
// reads and bpf_ktime_get_coarse_ns (CLOCK_MONOTONIC_COARSE) lags by a
// tick at most; 0 if it cannot be read.
func Monotonic() uint64 { return read(unix.CLOCK_MONOTONIC) }

func read(clock int32) uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(clock, &ts); err != nil {
		return 0
	}
	return uint64(ts.Nano())
}
