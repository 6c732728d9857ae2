package main

import (
	"fmt"
	"slices"
	"strings"
)

// results: metric → mode → round → value (rounds with an error are
// missing).
type results map[string]map[string]map[int]float64

func (r results) add(metric, mode string, round int, v float64) {
	if r[metric] == nil {
		r[metric] = map[string]map[int]float64{}
	}
	if r[metric][mode] == nil {
		r[metric][mode] = map[int]float64{}
	}
	r[metric][mode][round] = v
}

func (r results) values(metric, mode string) []float64 {
	var v []float64
	for _, x := range r[metric][mode] {
		v = append(v, x)
	}
	return v
}

// paired is mode's value over the reference's in each round that has
// both: the two were measured minutes apart at most, on the same machine
// state.
func (r results) paired(metric, mode, ref string) []float64 {
	var v []float64
	for round, g := range r[metric][mode] {
		if x, ok := r[metric][ref][round]; ok && x > 0 {
			v = append(v, g/x)
		}
	}
	return v
}

func stats(v []float64) (lo, med, hi float64) {
	if len(v) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[0], s[len(s)/2], s[len(s)-1]
}

func report(res results, want []string) {
	fmt.Printf("Rounds: %d; in each, every metric is measured for every mode back to back (%d s each), in an order rotated per round. Values: min / median / max over the rounds.\n\n", *runs, *seconds)
	fmt.Printf("| metric | %s |\n|---|%s\n", strings.Join(want, " | "), strings.Repeat("---|", len(want)))
	for _, m := range metrics {
		row := []string{m.name}
		for _, mode := range want {
			lo, med, hi := stats(res.values(m.name, mode))
			row = append(row, fmt.Sprintf("%.3g / %.3g / %.3g", lo, med, hi))
		}
		fmt.Printf("| %s |\n", strings.Join(row, " | "))
	}
	var pairs [][2]string
	for _, p := range ratios {
		if slices.Contains(want, p[0]) && slices.Contains(want, p[1]) {
			pairs = append(pairs, p)
		}
	}
	if len(pairs) == 0 {
		return
	}
	fmt.Println()
	fmt.Println("Ratios: the gizmo over the reference, from the same round (min / median / max over the rounds), and of the medians above.")
	fmt.Println()
	head := []string{"ratio"}
	for _, p := range pairs {
		head = append(head, p[0]+"/"+p[1])
	}
	fmt.Printf("| %s |\n|---|%s\n", strings.Join(head, " | "), strings.Repeat("---|", len(pairs)))
	for _, m := range metrics {
		row := []string{m.name + ", same round"}
		for _, p := range pairs {
			r := res.paired(m.name, p[0], p[1])
			if len(r) == 0 {
				row = append(row, "—")
				continue
			}
			lo, med, hi := stats(r)
			row = append(row, fmt.Sprintf("%.2f× / **%.2f×** / %.2f×", lo, med, hi))
		}
		fmt.Printf("| %s |\n", strings.Join(row, " | "))
		row = []string{m.name + ", of medians"}
		for _, p := range pairs {
			_, g, _ := stats(res.values(m.name, p[0]))
			_, r, _ := stats(res.values(m.name, p[1]))
			if r == 0 {
				row = append(row, "—")
				continue
			}
			row = append(row, fmt.Sprintf("%.2f×", g/r))
		}
		fmt.Printf("| %s |\n", strings.Join(row, " | "))
	}
}

// ratios are the comparisons reported, mode over reference, for the
// pairs that were both measured.
var ratios = [][2]string{
	{"gizmo", "ipv6"}, {"gizmo", "tayga"}, {"gizmo", "nat44"},
	{"gizmo-onearm", "ipv6-onearm"}, {"gizmo-onearm", "ipv6"},
}

// reportAtLimit prints the run of one host at its limit: what it got, what
// the gizmo refused and counted, and whether its neighbour still got in.
func reportAtLimit(r atLimit) {
	fmt.Println()
	fmt.Println("At the limit (gizmo only, no ratio): one host opens connections from one address as fast as it can, until the gizmo refuses it and", *seconds, "s more; then another host of the LAN opens one.")
	fmt.Println()
	fmt.Println("| connections completed | in | refused, counted | the other host |\n|---|---|---|---|")
	var counted []string
	for _, k := range limitCounters {
		if n, ok := r.limitsCounted[k]; ok {
			counted = append(counted, fmt.Sprintf("%s %d", k, n))
		}
	}
	if len(counted) == 0 {
		counted = []string{"none"}
	}
	neighbour := "connected"
	if !r.neighbourOK {
		neighbour = fmt.Sprintf("failed: %v", r.neighbourErr)
	}
	fmt.Printf("| %d | %.1f s | %s | %s |\n", r.completed, r.elapsed.Seconds(), strings.Join(counted, ", "), neighbour)
}
