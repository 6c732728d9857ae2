package serveloop

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// The same error is logged once however often serve fails with it; a new
// error is logged again; Run returns nil when ctx ends.
func TestRunLogsEachErrorOnce(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	errs := []error{errors.New("no link-local yet"), errors.New("no link-local yet"), errors.New("no link-local yet"), errors.New("interface gone")}
	err := Run(ctx, log, "serving stopped, retrying", time.Millisecond, func(context.Context) error {
		calls++
		if calls == len(errs) {
			cancel()
		}
		return errs[calls-1]
	})
	if err != nil {
		t.Fatalf("Run = %v, want nil after ctx ended", err)
	}
	if calls != len(errs) {
		t.Fatalf("serve called %d times, want %d", calls, len(errs))
	}
	if n := strings.Count(buf.String(), "no link-local yet"); n != 1 {
		t.Errorf("repeated error logged %d times, want 1:\n%s", n, buf.String())
	}
	// The last error came with ctx already done: a stop, not a failure.
	if strings.Contains(buf.String(), "interface gone") {
		t.Errorf("error returned after ctx ended was logged:\n%s", buf.String())
	}
}

func TestSameInterface(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skip("no loopback interface:", err)
	}
	if err := SameInterface(lo); err != nil {
		t.Errorf("SameInterface(lo) = %v", err)
	}
	moved := *lo
	moved.Index += 1000
	if err := SameInterface(&moved); err == nil || !strings.Contains(err.Error(), "re-created") {
		t.Errorf("SameInterface with another index = %v, want re-created", err)
	}
	gone := net.Interface{Name: "gzt-nonexistent", Index: 1}
	if err := SameInterface(&gone); err == nil {
		t.Error("SameInterface of a missing interface = nil")
	}
}

type closer struct{ closed chan struct{} }

func (c closer) Close() error { close(c.closed); return nil }

// Read hands on the read loop's error, and stop ends the loop by closing
// its socket and returns only once the loop has returned.
func TestReadStopClosesAndWaits(t *testing.T) {
	c := closer{closed: make(chan struct{})}
	returned := false
	_, stop := Read(c, func() error {
		<-c.closed
		returned = true
		return net.ErrClosed
	})
	stop()
	if !returned {
		t.Fatal("stop returned before the read loop did")
	}

	failed := errors.New("read failed")
	done, _ := Read(closer{closed: make(chan struct{})}, func() error { return failed })
	if err := <-done; err != failed {
		t.Fatalf("done = %v, want %v", err, failed)
	}
}
