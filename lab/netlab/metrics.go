package netlab

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Metric reads the gizmo's /metrics (from inside gz-gizmo) and sums the
// samples of one family over all its label values, or takes the one
// sample named with its labels (`name{reason="x"}`, as /metrics writes
// it). found is false when there is no such sample (its service does not
// run).
func Metric(ctx context.Context, family string) (sum float64, found bool, err error) {
	body, err := HTTPGet(ctx, NSGizmo, "http://[::1]/metrics")
	if err != nil {
		return 0, false, err
	}
	for _, line := range strings.Split(body, "\n") {
		name, rest, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		if base, _, _ := strings.Cut(name, "{"); name != family && (strings.Contains(family, "{") || base != family) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			return 0, false, fmt.Errorf("netlab: /metrics line %q: %w", line, err)
		}
		sum, found = sum+v, true
	}
	return sum, found, nil
}
