package errtest

import (
	"errors"
	"runtime"
	"testing"
)

// OneLine passes an error on one line that names the problem and fails
// the test on anything else; a recording testing.TB shows which.
func TestOneLine(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		failed bool
	}{
		{"one line naming the problem", errors.New("config.json: line 3: unknown field Pakages"), false},
		{"no error", nil, true},
		{"another problem", errors.New("config.json: line 3: unexpected }"), true},
		{"several lines", errors.New("config.json:\nunknown field Pakages"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{TB: t}
			done := make(chan struct{})
			go func() { // Fatalf ends the goroutine, as it would a test's
				defer close(done)
				OneLine(r, tc.err, "Pakages")
			}()
			<-done
			if r.failed != tc.failed {
				t.Errorf("failed = %v, want %v", r.failed, tc.failed)
			}
		})
	}
}

// recorder is a testing.TB that notes a failure instead of failing.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Errorf(string, ...any) { r.failed = true }
func (r *recorder) Fatalf(string, ...any) { r.failed = true; runtime.Goexit() }
