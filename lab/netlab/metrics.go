package netlab

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Metric reads the gizmo's /metrics (from inside gz-gizmo) and sums the
// samples of one family over all its label values. found is false when the
// family is absent (its service does not run).
func Metric(ctx context.Context, family string) (sum float64, found bool, err error) {
	body, err := HTTPGet(ctx, NSGizmo, "http://[::1]/metrics")
	if err != nil {
		return 0, false, err
	}
	for _, line := range strings.Split(body, "\n") {
		name, rest, ok := strings.Cut(line, " ")
		if base, _, _ := strings.Cut(name, "{"); !ok || base != family {
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
