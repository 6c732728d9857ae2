package reconcile

import (
	"context"
	"errors"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/internal/mailbox"
)

// A plan that fails to apply is applied again until it succeeds, and a plan
// that applied is not applied again.
func TestFailedPlanIsRetried(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var plans mailbox.Box[int]
	calls := make(chan int, 16)
	failures := 2
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, &plans, time.Millisecond, func(p int) error {
			calls <- p
			if failures > 0 {
				failures--
				return errors.New("not yet")
			}
			return nil
		})
	}()
	plans.Put(7)
	for i := range 3 {
		select {
		case p := <-calls:
			if p != 7 {
				t.Fatalf("call %d applied %d, want 7", i, p)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("call %d never came", i)
		}
	}
	cancel()
	<-done
	if len(calls) != 0 {
		t.Fatalf("applied again after success: %d more calls", len(calls))
	}
}

// While a plan fails, a newer plan replaces it.
func TestNewerPlanReplacesFailing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var plans mailbox.Box[int]
	got := make(chan int, 64)
	go Run(ctx, &plans, time.Hour, func(p int) error {
		got <- p
		if p == 1 {
			return errors.New("plan 1 never applies")
		}
		return nil
	})
	plans.Put(1)
	if p := <-got; p != 1 {
		t.Fatalf("first applied %d, want 1", p)
	}
	plans.Put(2)
	if p := <-got; p != 2 {
		t.Fatalf("then applied %d, want 2", p)
	}
}
