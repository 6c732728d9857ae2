package netlab

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"
)

// Waiters get the lock in the order they started waiting.
func TestLockIsFIFO(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// A private lock, so the test runs beside a lab in use.
	name := fmt.Sprintf("@gizmo-lab-test.%d.lock", os.Getpid())
	queue := fmt.Sprintf("@gizmo-lab-test.%d.queue.", os.Getpid())
	first, err := acquireNamedLock(ctx, log, name, queue)
	if err != nil {
		t.Fatal(err)
	}
	order := make(chan int, 3)
	for i := range 3 {
		go func() {
			l, err := acquireNamedLock(ctx, log, name, queue)
			if err != nil {
				t.Error(err)
				order <- -1
				return
			}
			order <- i
			time.Sleep(20 * time.Millisecond)
			l.release()
		}()
		// Tickets carry the start time; let each waiter queue up in turn.
		time.Sleep(30 * time.Millisecond)
	}
	first.release()
	for want := range 3 {
		if got := <-order; got != want {
			t.Errorf("waiter %d got the lock as number %d", got, want)
		}
	}
}
