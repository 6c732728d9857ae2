package boundedhttp

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestWithDefaultsFillsOnlyUnsetBounds(t *testing.T) {
	d := Bounds{MaxConns: 8, ReadHeaderTimeout: time.Second, ReadTimeout: 2 * time.Second,
		WriteTimeout: 3 * time.Second, IdleTimeout: 4 * time.Second, MaxHeaderBytes: 1024}
	got := Bounds{MaxConns: 2, IdleTimeout: -1}.WithDefaults(d)
	want := d
	want.MaxConns = 2
	if got != want {
		t.Errorf("WithDefaults = %+v, want %+v", got, want)
	}
}

// The cap holds a third client in the accept queue until a slot frees,
// counting the wait; a client that never sends its header is closed by
// ReadHeaderTimeout and counted.
func TestServeCapsAndTimesConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var c Counters
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ln, http.NotFoundHandler(), Bounds{MaxConns: 2, ReadHeaderTimeout: 200 * time.Millisecond}, &c, discardLogger(), nil)
	}()
	for range 3 {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.Timeouts.Load() < 3 || c.Limited.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("accepted %d, limited %d, timeouts %d: want 3 timeouts after one wait", c.Accepted.Load(), c.Limited.Load(), c.Timeouts.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := c.Accepted.Load(); n != 3 {
		t.Errorf("accepted %d, want 3", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve after cancel: %v", err)
	}
	if n := c.Open.Load(); n != 0 {
		t.Errorf("open after shutdown = %d, want 0", n)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
