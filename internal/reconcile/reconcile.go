// Package reconcile runs the loop of a service that makes the kernel match
// the newest plan: a plan that fails to apply (the interface not there yet,
// the kernel refusing) is tried again after a pause, until it applies or a
// newer plan replaces it.
package reconcile

import (
	"context"
	"time"

	"codeberg.org/monostack/gizmo/internal/mailbox"
)

// Run calls apply with each newest plan from plans until ctx is done. When
// apply fails, the same plan is applied again after retry, unless a newer
// one comes first; the caller counts and logs the error inside apply.
// Nothing is applied before the first plan.
func Run[P any](ctx context.Context, plans *mailbox.Box[P], retry time.Duration, apply func(P) error) {
	plans.Each(ctx, func(p P) {
		for apply(p) != nil {
			select {
			case <-ctx.Done():
				return
			case <-plans.C():
				if newer, ok := plans.Take(); ok {
					p = newer
				}
			case <-time.After(retry):
			}
		}
	})
}
