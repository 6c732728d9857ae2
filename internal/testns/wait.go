package testns

import (
	"testing"
	"time"
)

// WaitFor polls cond every 100 ms until it holds, and fails the test
// with what cond last reported once timeout has passed: the namespace
// tests wait for the kernel and the peers. The timeout only keeps a broken
// test from hanging; it is not a speed requirement.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() (ok bool, last string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last: %s", what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
