package firewall

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"

	"codeberg.org/monostack/gizmo/services/fastpath"
)

// The forwarding benchmarks' shared frame: configurations measured in
// rounds, in a new order each round, and their results per configuration
// and test.

// median is the middle of the rounds' results (the upper one of an even
// count).
func median[T cmp.Ordered](v []T) T {
	_, med, _ := quartiles(v)
	return med
}

// quartiles are the lower quartile, the median and the upper quartile of
// the rounds' results (each the upper one where it falls between two).
func quartiles[T cmp.Ordered](v []T) (q1, med, q3 T) {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/4], v[len(v)/2], v[3*len(v)/4]
}

// benchConfig is one configuration of the router that a forwarding
// benchmark compares with the others.
type benchConfig struct {
	name  string
	apply func() error
	done  func() // when set, ends what apply started, after the measurement
	v4    bool   // the IPv4 path needs NAT44 to work at all
}

// shuffled is configs in a new random order. The benchmarks take one
// every round, so that drifts of the machine and a periodic load on it do
// not always meet the same configuration.
func shuffled(configs []benchConfig) []benchConfig {
	order := slices.Clone(configs)
	rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	return order
}

// measure applies c, runs the measurement and ends what c started.
func (c benchConfig) measure(b *testing.B, run func()) {
	b.Helper()
	if err := c.apply(); err != nil {
		b.Fatalf("%s: %v", c.name, err)
	}
	run()
	if c.done != nil {
		c.done()
	}
}

// natOnly is the least ruleset IPv4 forwarding needs: the masquerade of
// plan's legacy network on the uplink, which also turns conntrack on. The
// ruleset's cost is measured against it.
func natOnly(plan Plan) Ruleset {
	return Ruleset{Table: TableName, Chains: []Chain{postrouting(Plan{WAN: "uplink0", Legacy4: plan.Legacy4})}}
}

// loadRaw loads rs as it is into the service's namespace, past Apply.
// The ruleset Apply remembers is no longer the kernel's, so it is
// forgotten: the next Apply loads its own in full.
func (s *Service) loadRaw(rs Ruleset) error {
	conn, err := s.conn()
	if err != nil {
		return err
	}
	if err := rs.queue(conn, nil); err != nil {
		return err
	}
	s.last = nil
	return conn.Flush()
}

// applyWithFastpath applies plan and starts services/fastpath beside it
// in tp's router; stop ends the fast path.
func applyWithFastpath(b *testing.B, s *Service, tp *topo, plan Plan) (fp *fastpath.Service, stop func(), err error) {
	b.Helper()
	if err := s.Apply(plan); err != nil {
		return nil, nil, err
	}
	fp, stop = runFastpath(b, tp, plan.LANPrefixes)
	return fp, stop, nil
}

// samples are a benchmark's results per configuration and test, one a
// round.
type samples[T cmp.Ordered] map[sampleKey][]T

type sampleKey struct{ config, test string }

func (sm samples[T]) add(config, test string, v T) {
	k := sampleKey{config, test}
	sm[k] = append(sm[k], v)
}

// each calls f with the results of every configuration and test that has
// some, in the order of configs and tests.
func (sm samples[T]) each(configs []benchConfig, tests []string, f func(config, test string, v []T)) {
	for _, c := range configs {
		for _, test := range tests {
			if v := sm[sampleKey{c.name, test}]; len(v) > 0 {
				f(c.name, test, v)
			}
		}
	}
}

// comparisons are the pairs of configurations a report sets against each
// other, numerator first, in each of tests.
type comparisons struct {
	tests []string
	pairs [][2]string
}

// compare calls f with the results of each pair in each test where both
// configurations have some, in the order of cs.
func (sm samples[T]) compare(cs []comparisons, f func(num, den, test string, n, d []T)) {
	for _, c := range cs {
		for _, test := range c.tests {
			for _, p := range c.pairs {
				n, d := sm[sampleKey{p[0], test}], sm[sampleKey{p[1], test}]
				if len(n) > 0 && len(d) > 0 {
					f(p[0], p[1], test, n, d)
				}
			}
		}
	}
}

// nonZero keeps the counters that counted something, for the log.
func nonZero(m map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}
