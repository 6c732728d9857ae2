package rollup

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// A family is one declared metric: a counter (the name ends in _total) or
// a gauge, read from one service's Stats and optionally split by labels.
// It has no samples while that service does not run.
type family struct {
	desc    *prometheus.Desc
	kind    prometheus.ValueType
	samples func(Stats) []sample
}

// A sample is one value of a family, with its label values (none for an
// unlabelled family).
type sample struct {
	value  float64
	labels []string
}

// declare is a family of the service whose Stats of picks out of the
// rollup's Stats (nil: not running); f gives its samples.
func declare[S any](of func(Stats) *S, kind prometheus.ValueType, name, help string, labels []string, f func(S) []sample) family {
	return family{
		desc: prometheus.NewDesc(name, help, labels, nil),
		kind: kind,
		samples: func(s Stats) []sample {
			if p := of(s); p != nil {
				return f(*p)
			}
			return nil
		},
	}
}

func counter[S any](of func(Stats) *S, name, help string, f func(S) uint64) family {
	return declare(of, prometheus.CounterValue, name, help, nil, func(s S) []sample { return []sample{{value: float64(f(s))}} })
}

func gauge[S any](of func(Stats) *S, name, help string, f func(S) float64) family {
	return declare(of, prometheus.GaugeValue, name, help, nil, func(s S) []sample { return []sample{{value: f(s)}} })
}

func counterBy[S any](of func(Stats) *S, name, help, label string, f func(S) map[string]uint64) family {
	return declare(of, prometheus.CounterValue, name, help, []string{label}, func(s S) []sample { return byLabel(floats(f(s))) })
}

func gaugeBy[S any](of func(Stats) *S, name, help, label string, f func(S) map[string]float64) family {
	return declare(of, prometheus.GaugeValue, name, help, []string{label}, func(s S) []sample { return byLabel(f(s)) })
}

func counterBy2[S any](of func(Stats) *S, name, help, label1, label2 string, f func(S) map[[2]string]uint64) family {
	return declare(of, prometheus.CounterValue, name, help, []string{label1, label2}, func(s S) []sample {
		m := f(s)
		out := make([]sample, 0, len(m))
		for _, l := range slices.SortedFunc(maps.Keys(m), func(a, b [2]string) int {
			return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1]))
		}) {
			out = append(out, sample{value: float64(m[l]), labels: []string{l[0], l[1]}})
		}
		return out
	})
}

// byLabel are one sample a label value, in the order of the values.
func byLabel(m map[string]float64) []sample {
	out := make([]sample, 0, len(m))
	for _, l := range slices.Sorted(maps.Keys(m)) {
		out = append(out, sample{value: m[l], labels: []string{l}})
	}
	return out
}

func floats[N int | uint64](m map[string]N) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[k] = float64(v)
	}
	return out
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Metrics are every running service's counters and gauges, each declared
// in families with its type.
func Metrics(s Stats) []prometheus.Metric {
	var out []prometheus.Metric
	for _, f := range families {
		for _, x := range f.samples(s) {
			out = append(out, prometheus.MustNewConstMetric(f.desc, f.kind, x.value, x.labels...))
		}
	}
	return out
}
