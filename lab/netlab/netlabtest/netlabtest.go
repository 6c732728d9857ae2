// Package netlabtest holds what the lab's test packages share on top of
// package netlab where a failed read fails the test: netlab itself returns
// errors, for the lab binary as much as for tests.
package netlabtest

import (
	"context"
	"testing"

	"codeberg.org/monostack/gizmo/lab/netlab"
)

// Metric is the sum of a /metrics family of the gizmo over its label
// values, or the one sample named with its labels (netlab.Metric). The
// test fails when /metrics cannot be read or has no such sample: a test
// that reads a counter expects its service to run.
func Metric(t testing.TB, ctx context.Context, family string) float64 {
	t.Helper()
	v, found, err := netlab.Metric(ctx, family)
	if err != nil || !found {
		t.Fatalf("/metrics %s: found %v, %v", family, found, err)
	}
	return v
}
