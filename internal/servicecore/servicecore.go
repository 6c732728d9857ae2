// Package servicecore is what the services that serve one LAN interface
// share: the daemon hands them plans with Update, which never blocks, and
// reads their counters with Stats, while their own goroutines take the
// newest plan, count under one lock, and serve the interface again after
// it went missing or was re-created.
package servicecore

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"codeberg.org/monostack/gizmo/internal/guarded"
	"codeberg.org/monostack/gizmo/internal/mailbox"
	"codeberg.org/monostack/gizmo/internal/serveloop"
	"codeberg.org/monostack/gizmo/internal/svclog"
)

// Core holds what a service on one interface keeps for the daemon: its
// logger, its newest plan (type P) and its counters (type S). A service
// keeps it in an unexported field and forwards its own Update and Stats to
// it, so that the rest stays inside the service: Init is for its New, and
// Log, Count, Plans and Serve are for its goroutines.
// A Core must not be copied after Init.
type Core[P, S any] struct {
	// Log is the service's logger, with its name and interface on every
	// record.
	Log   *slog.Logger
	plans mailbox.Box[P]
	stats guarded.Stats[S]
}

// Init readies the core of the service name on the interface iface, which
// must be set: it logs through logger (slog's default when nil), starts
// the counters at start and gives a snapshot of them its own copy with
// clone (see guarded.Stats.Clone; nil when a plain copy shares nothing).
// It is called once, before the service is shared.
func (c *Core[P, S]) Init(name, iface string, logger *slog.Logger, start S, clone func(S) S) error {
	if iface == "" {
		return fmt.Errorf("%s: no interface", name)
	}
	c.Log = svclog.For(logger, name, "interface", iface)
	c.stats.Clone = clone
	c.stats.Add(func(s *S) { *s = start })
	return nil
}

// Update hands the service a new plan. It never blocks; the newest plan
// wins over one not yet taken.
func (c *Core[P, S]) Update(p P) { c.plans.Put(p) }

// Stats returns a snapshot of the counters.
func (c *Core[P, S]) Stats() S { return c.stats.Snapshot() }

// Count applies f to the counters under their lock.
func (c *Core[P, S]) Count(f func(*S)) { c.stats.Add(f) }

// Plans is the box the plans from Update wait in: wait on its C, then Take.
func (c *Core[P, S]) Plans() *mailbox.Box[P] { return &c.plans }

// RetryInterval is how long Serve waits before it serves the interface
// again after an error: the interface missing or re-created, or its
// link-local address still tentative (RFC 4862 §5.4).
const RetryInterval = time.Second

// Serve calls serve until ctx is done, RetryInterval after each return, and
// logs an error as msg when it first appears (see serveloop.Run). It
// returns nil once ctx is done.
func (c *Core[P, S]) Serve(ctx context.Context, msg string, serve func(context.Context) error) error {
	return serveloop.Run(ctx, c.Log, msg, RetryInterval, serve)
}
