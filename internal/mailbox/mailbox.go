// Package mailbox hands a service the newest of a stream of values, such as
// the plans the daemon computes after every change of its state.
//
// The daemon must never wait for a service (a slow or stuck service would
// stall every other one), and a service that falls behind needs only the
// newest plan: a plan describes the whole wanted state, so an older one that
// was never applied is worth nothing. A Box therefore holds at most one
// value; Put replaces it and never blocks.
package mailbox

import (
	"context"
	"sync"
)

// Box holds the newest value not yet taken. Put may be called from any
// number of goroutines; one reader waits on C and then calls Take. The zero
// Box is empty and ready to use. A Box must not be copied after first use.
type Box[T any] struct {
	mu     sync.Mutex
	v      T
	full   bool
	signal chan struct{} // capacity 1: pending while the box is full
}

// ch returns the signal channel, creating it on first use. b.mu is held.
func (b *Box[T]) ch() chan struct{} {
	if b.signal == nil {
		b.signal = make(chan struct{}, 1)
	}
	return b.signal
}

// Put stores v, replacing a value not yet taken, and signals C. It never
// blocks.
func (b *Box[T]) Put(v T) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.v, b.full = v, true
	select {
	case b.ch() <- struct{}{}:
	default: // a signal is already pending for the value it replaces
	}
}

// C receives once after one or more Puts; the reader then calls Take. A
// receive from C with nothing left to Take (ok false) can happen when the
// value was taken without waiting on C first; readers ignore it.
func (b *Box[T]) C() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch()
}

// Take removes and returns the value; ok is false when the box is empty.
// It also consumes a pending signal, so that C does not fire again for a
// value already taken.
func (b *Box[T]) Take() (v T, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok = b.v, b.full
	var zero T
	b.v, b.full = zero, false // drop the reference: the reader owns v now
	select {
	case <-b.ch():
	default:
	}
	return v, ok
}

// Each calls f with every value it takes until ctx is done: the whole
// loop of a reader that waits for nothing else. Values put while f runs
// replace each other, and the newest is taken when f returns.
func (b *Box[T]) Each(ctx context.Context, f func(T)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.C():
			if v, ok := b.Take(); ok {
				f(v)
			}
		}
	}
}
