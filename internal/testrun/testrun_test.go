package testrun

import (
	"context"
	"errors"
	"testing"
)

func TestStopCancelsAndReturnsRunsError(t *testing.T) {
	running := make(chan struct{})
	stop := Start(t, "run", func(ctx context.Context) error {
		close(running)
		<-ctx.Done()
		return errors.New("stopped")
	})
	<-running
	if err := stop(); err == nil || err.Error() != "stopped" {
		t.Errorf("stop = %v, want run's error", err)
	}
	if err := stop(); err == nil || err.Error() != "stopped" {
		t.Errorf("second stop = %v, want the same error", err)
	}
}

// An error from a run the test never stopped fails the test; one the test
// stopped itself is the test's to judge.
func TestCleanupReportsRunsErrorUnlessStopped(t *testing.T) {
	for _, tc := range []struct {
		name     string
		stop     bool
		wantFail bool
	}{
		{"not stopped: the error fails the test", false, true},
		{"stopped by the test: the test judged it", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{TB: t}
			func() {
				defer rec.cleanup()
				stop := Start(rec, "run", func(ctx context.Context) error {
					<-ctx.Done()
					return errors.New("broken")
				})
				if tc.stop {
					_ = stop()
				}
			}()
			if rec.failed != tc.wantFail {
				t.Errorf("failed = %v, want %v", rec.failed, tc.wantFail)
			}
		})
	}
}

// recorder is a testing.TB that keeps its cleanups and failures for the
// test to look at.
type recorder struct {
	testing.TB
	cleanups []func()
	failed   bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Cleanup(f func())      { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Errorf(string, ...any) { r.failed = true }
func (r *recorder) cleanup() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}
