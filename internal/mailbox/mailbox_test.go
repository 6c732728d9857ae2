package mailbox

import (
	"context"
	"sync"
	"testing"
	"time"
)

// signalled reports whether b's C has fired, without waiting.
func signalled[T any](b *Box[T]) bool {
	select {
	case <-b.C():
		return true
	default:
		return false
	}
}

// wantTake checks that Take gives want.
func wantTake[T comparable](t *testing.T, b *Box[T], want T) {
	t.Helper()
	if v, ok := b.Take(); !ok || v != want {
		t.Fatalf("Take = %v, %v; want %v, true", v, ok, want)
	}
}

// wantEmpty checks that Take finds the box empty.
func wantEmpty[T any](t *testing.T, b *Box[T]) {
	t.Helper()
	if v, ok := b.Take(); ok {
		t.Fatalf("Take = %v, true; want an empty box", v)
	}
}

func TestEmpty(t *testing.T) {
	var b Box[int]
	wantEmpty(t, &b)
	if signalled(&b) {
		t.Fatal("C fired on an empty box")
	}
}

func TestNewestWins(t *testing.T) {
	var b Box[string]
	b.Put("first")
	b.Put("second")
	b.Put("third")
	if !signalled(&b) {
		t.Fatal("C did not fire after Put")
	}
	wantTake(t, &b, "third")
	wantEmpty(t, &b)
	if signalled(&b) {
		t.Fatal("C fired again after the value was taken")
	}
}

// A reader that takes without waiting on C (e.g. right after its start)
// must not be woken afterwards for the value it already has.
func TestTakeConsumesSignal(t *testing.T) {
	var b Box[int]
	b.Put(1)
	wantTake(t, &b, 1)
	if signalled(&b) {
		t.Fatal("C fired for a value already taken")
	}
	b.Put(2)
	if !signalled(&b) {
		t.Fatal("C did not fire after a Put following a Take")
	}
	wantTake(t, &b, 2)
}

// Put never waits for the reader: with nobody reading, any number of Puts
// return.
func TestPutNeverBlocks(t *testing.T) {
	var b Box[int]
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 10_000 {
			b.Put(i)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Put blocked without a reader")
	}
	if v, ok := b.Take(); !ok || v != 9_999 {
		t.Fatalf("Take = %d, %v; want 9999, true", v, ok)
	}
}

// Many writers and one reader (run with -race): the reader sees each
// writer's values in order, never a value twice, and after the writers stop
// it ends with every writer's last value.
func TestConcurrentWriters(t *testing.T) {
	const writers, perWriter = 8, 2_000
	type plan struct{ writer, seq int }
	var b Box[plan]
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= perWriter; i++ {
				b.Put(plan{w, i})
			}
		}()
	}
	stop := make(chan struct{})
	go func() { wg.Wait(); close(stop) }()

	last := make([]int, writers)
	take := func() {
		p, ok := b.Take()
		if !ok {
			return
		}
		if p.seq <= last[p.writer] {
			t.Errorf("writer %d: got seq %d after %d", p.writer, p.seq, last[p.writer])
		}
		last[p.writer] = p.seq
	}
	for done := false; !done; {
		select {
		case <-b.C():
			take()
		case <-stop:
			take() // the value of the last Put, if the reader missed it
			done = true
		}
	}
	// Only the newest value survives, so exactly one writer's last Put is
	// guaranteed to arrive: the one that was put last.
	got := 0
	for w := range writers {
		if last[w] == perWriter {
			got++
		}
	}
	if got == 0 {
		t.Errorf("the reader never saw a writer's final value: %v", last)
	}
}

// The reader goroutine of a service: it waits on C, takes, applies. Every
// Put that happens while it applies is folded into the next Take.
func TestReaderLoop(t *testing.T) {
	var b Box[int]
	applied := make(chan int)
	ctxDone := make(chan struct{})
	go func() {
		for {
			select {
			case <-ctxDone:
				close(applied)
				return
			case <-b.C():
				if v, ok := b.Take(); ok {
					applied <- v
				}
			}
		}
	}()
	b.Put(1)
	if v := <-applied; v != 1 {
		t.Fatalf("applied %d, want 1", v)
	}
	// The reader is idle; two Puts before it wakes are one application of
	// the newer, or the older then the newer, never the older last.
	b.Put(2)
	b.Put(3)
	v := <-applied
	if v == 2 {
		v = <-applied
	}
	if v != 3 {
		t.Fatalf("applied %d last, want 3", v)
	}
	close(ctxDone)
	for v := range applied {
		t.Errorf("applied %d after the last Put", v)
	}
}

// Each hands the reader every value it takes, the newest when several
// were put while it was busy, and returns when its context is done.
func TestEachTakesNewestUntilDone(t *testing.T) {
	var b Box[int]
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan int)
	release := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.Each(ctx, func(v int) {
			got <- v
			<-release
		})
	}()
	b.Put(1)
	if v := <-got; v != 1 {
		t.Fatalf("first value %d, want 1", v)
	}
	b.Put(2) // replaced by 3 before the reader is back
	b.Put(3)
	release <- struct{}{}
	if v := <-got; v != 3 {
		t.Fatalf("second value %d, want 3 (the newest)", v)
	}
	cancel()
	release <- struct{}{}
	<-done
}
