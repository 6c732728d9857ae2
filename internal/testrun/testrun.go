// Package testrun runs a service's Run for as long as a test needs it.
package testrun

import (
	"context"
	"sync"
	"testing"
)

// Start runs run (a service's Run) on a goroutine of its own until stop is
// called or the test ends. stop cancels run's context, waits for run to
// return and returns its error; later calls return the same error. If the
// test never calls stop, an error from run fails the test, named by what.
func Start(t testing.TB, what string, run func(context.Context) error) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var (
		mu      sync.Mutex
		stopped bool
		result  error
	)
	stop = func() error {
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			stopped = true
			cancel()
			result = <-done
		}
		return result
	}
	t.Cleanup(func() {
		mu.Lock()
		byTest := stopped
		mu.Unlock()
		if err := stop(); err != nil && !byTest {
			t.Errorf("%s: %v", what, err)
		}
	})
	return stop
}
