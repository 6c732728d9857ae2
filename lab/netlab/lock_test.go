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
		// Tickets carry the start time: let each waiter take its ticket
		// before the next one starts, however slowly the machine runs.
		for queued(t, queue) < i+1 {
			if ctx.Err() != nil {
				t.Fatalf("waiter %d never queued", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	first.release()
	for want := range 3 {
		if got := <-order; got != want {
			t.Errorf("waiter %d got the lock as number %d", got, want)
		}
	}
}

// queued counts the tickets in the lock's queue.
func queued(t *testing.T, prefix string) int {
	t.Helper()
	tickets, err := queueTickets(prefix)
	if err != nil {
		t.Fatal(err)
	}
	return len(tickets)
}
