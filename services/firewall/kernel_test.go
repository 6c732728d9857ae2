package firewall

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"codeberg.org/monostack/gizmo/internal/testns"
)

// nftJSON is `nft -j list ruleset`, split into the object kinds the tests
// compare.
type nftJSON struct {
	tables   []string
	counters []string
	chains   map[string]jsonChain
	sets     map[string][]string // elements, as strings
}

type jsonChain struct {
	Type   string `json:"type"`
	Hook   string `json:"hook"`
	Prio   int32  `json:"prio"`
	Policy string `json:"policy"`
}

func listJSON(t *testing.T, ns string) nftJSON {
	t.Helper()
	out := testns.Exec(t, ns, "nft", "-j", "list", "ruleset")
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("nft -j: %v", err)
	}
	res := nftJSON{chains: map[string]jsonChain{}, sets: map[string][]string{}}
	for _, obj := range doc.Nftables {
		for kind, raw := range obj {
			var hdr struct {
				Family, Name, Table string
				Elem                []json.RawMessage `json:"elem"`
			}
			if err := json.Unmarshal(raw, &hdr); err != nil {
				t.Fatalf("nft -j %s: %v", kind, err)
			}
			switch kind {
			case "table":
				res.tables = append(res.tables, hdr.Family+" "+hdr.Name)
			case "counter":
				res.counters = append(res.counters, hdr.Name)
			case "chain":
				var c jsonChain
				if err := json.Unmarshal(raw, &c); err != nil {
					t.Fatal(err)
				}
				res.chains[hdr.Name] = c
			case "set":
				var els []string
				for _, e := range hdr.Elem {
					els = append(els, jsonElem(t, e))
				}
				slices.Sort(els)
				res.sets[hdr.Name] = els
			}
		}
	}
	slices.Sort(res.counters)
	return res
}

// icmpNames maps the type names nft prints to numbers (RFC 4443, 4861,
// 2710, 3810, 3122; RFC 792 for ICMPv4 under a "4:" prefix).
var icmpNames = map[string]int{
	"destination-unreachable": 1, "packet-too-big": 2, "time-exceeded": 3, "parameter-problem": 4,
	"echo-request": 128, "echo-reply": 129, "mld-listener-query": 130, "mld-listener-report": 131,
	"mld-listener-done": 132, "nd-router-solicit": 133, "nd-router-advert": 134,
	"nd-neighbor-solicit": 135, "nd-neighbor-advert": 136, "nd-redirect": 137,
	"router-renumbering": 138, "ind-neighbor-solicit": 141, "ind-neighbor-advert": 142,
	"mld2-listener-report":      143,
	"4:destination-unreachable": 3, "4:echo-request": 8, "4:time-exceeded": 11, "4:parameter-problem": 12,
}

func jsonElem(t *testing.T, raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n int
	if json.Unmarshal(raw, &n) == nil {
		return fmt.Sprint(n)
	}
	var obj struct {
		Prefix *struct {
			Addr string `json:"addr"`
			Len  int    `json:"len"`
		} `json:"prefix"`
		Concat []json.RawMessage `json:"concat"`
		Range  []string          `json:"range"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatalf("set element %s: %v", raw, err)
	}
	switch {
	case obj.Prefix != nil:
		return fmt.Sprintf("%s/%d", obj.Prefix.Addr, obj.Prefix.Len)
	case obj.Concat != nil:
		var parts []string
		for _, c := range obj.Concat {
			parts = append(parts, jsonElem(t, c))
		}
		return strings.Join(parts, " . ")
	case obj.Range != nil:
		return obj.Range[0] + "-" + obj.Range[1]
	}
	t.Fatalf("set element %s: unknown form", raw)
	return ""
}

// modelElems prints a model set's elements the way nft -j does.
func modelElems(s Set) []string {
	var els []string
	for _, p := range s.Prefixes {
		els = append(els, p.Masked().Addr().String())
	}
	for _, e := range s.Services {
		if e.Addr.IsValid() {
			els = append(els, fmt.Sprintf("%v . %v . %d", e.Addr, e.Proto, e.Port.Port))
		} else {
			els = append(els, fmt.Sprintf("%v . %d", e.Proto, e.Port.Port))
		}
	}
	for _, ty := range s.Types {
		els = append(els, fmt.Sprint(ty))
	}
	slices.Sort(els)
	return els
}

func normalizeICMP(kind SetKind, els []string) []string {
	out := slices.Clone(els)
	for i, e := range out {
		key := e
		if kind == SetICMPTypes {
			key = "4:" + e
		}
		if n, ok := icmpNames[key]; ok {
			out[i] = fmt.Sprint(n)
		}
	}
	slices.Sort(out)
	return out
}

// listRules returns each chain's rules as `nft list` prints them.
func listRules(t *testing.T, ns string) map[string][]string {
	t.Helper()
	out := testns.Exec(t, ns, "nft", "list", "table", "inet", TableName)
	rules := map[string][]string{}
	chain := ""
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "chain "):
			chain = strings.Fields(line)[1]
			rules[chain] = []string{}
		case line == "}":
			chain = ""
		case chain != "" && line != "" && !strings.HasPrefix(line, "type "):
			rules[chain] = append(rules[chain], line)
		}
	}
	return rules
}

// TestApplyReadBack applies the lab plan in a namespace and compares what
// the kernel holds, as nft reads it back, with the model.
func TestApplyReadBack(t *testing.T) {
	testns.NeedRoot(t)
	ns := testns.New(t, "fw-rb")
	s := newService(t, ns)
	p := labPlan()
	p.NAT64Mark = 0x64
	if err := s.Apply(p); err != nil {
		t.Fatal(err)
	}
	rs := Render(p)
	got := listJSON(t, ns)

	if diff := cmp.Diff([]string{"inet " + TableName}, got.tables); diff != "" {
		t.Errorf("tables (-want +got):\n%s", diff)
	}
	wantCounters := CounterNames()
	slices.Sort(wantCounters)
	if diff := cmp.Diff(wantCounters, got.counters); diff != "" {
		t.Errorf("counters (-want +got):\n%s", diff)
	}
	for _, c := range rs.Chains {
		jc, ok := got.chains[c.Name]
		if !ok {
			t.Errorf("chain %s missing", c.Name)
			continue
		}
		if c.Hook != nil {
			want := jsonChain{Type: c.Hook.Type, Hook: c.Hook.Hook, Prio: c.Hook.Priority, Policy: c.Hook.Policy.String()}
			if jc != want {
				t.Errorf("chain %s: hook %+v, want %+v", c.Name, jc, want)
			}
		}
	}
	if len(got.chains) != len(rs.Chains) {
		t.Errorf("kernel has %d chains, model %d", len(got.chains), len(rs.Chains))
	}
	for _, set := range rs.Sets {
		want := modelElems(set)
		have := got.sets[set.Name]
		if set.Kind == SetICMPv6Types || set.Kind == SetICMPTypes {
			have = normalizeICMP(set.Kind, have)
		}
		if diff := cmp.Diff(want, have); diff != "" {
			t.Errorf("set %s elements (-model +kernel):\n%s", set.Name, diff)
		}
	}
	rules := listRules(t, ns)
	for _, c := range rs.Chains {
		var want []string
		for _, r := range c.Rules {
			want = append(want, r.String())
		}
		if want == nil {
			want = []string{}
		}
		if diff := cmp.Diff(want, rules[c.Name]); diff != "" {
			t.Errorf("chain %s rules (-model +nft list):\n%s", c.Name, diff)
		}
	}
}

// A daemon that crashed left its table; the next one replaces it, keeps
// one table, and carries the counters over.
func TestApplyReplacesTableAndCarriesCounters(t *testing.T) {
	testns.NeedRoot(t)
	ns := testns.New(t, "fw-rs")
	old := newService(t, ns)
	conn, err := old.conn()
	if err != nil {
		t.Fatal(err)
	}
	carry := map[string]Counter{CounterDropSpoofWAN: {Packets: 7, Bytes: 700}, CounterIPv6Forwarded: {Packets: 3, Bytes: 3000}}
	if err := Render(labPlan()).queue(conn, carry); err != nil {
		t.Fatal(err)
	}
	if err := conn.Flush(); err != nil {
		t.Fatal(err)
	}

	renumbered := labPlan()
	renumbered.Delegated = q("2001:db8:1000:200::/56")
	renumbered.LANPrefixes = []netip.Prefix{q("2001:db8:1000:200::/64"), q("fd12:3456:789a::/64")}
	renumbered.PrefixRules = []netip.Prefix{q("2001:db8:1000:210::/64")}
	restarted := newService(t, ns)
	if err := restarted.Apply(renumbered); err != nil {
		t.Fatal(err)
	}
	got := listJSON(t, ns)
	if diff := cmp.Diff([]string{"inet " + TableName}, got.tables); diff != "" {
		t.Errorf("tables after restart (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"2001:db8:1000:210::"}, got.sets[setInboundPrefix+"_64"]); diff != "" {
		t.Errorf("inbound_prefix after renumbering (-want +got):\n%s", diff)
	}
	c, err := restarted.Counters()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range carry {
		if c[name] != want {
			t.Errorf("counter %s = %+v after the swap, want %+v", name, c[name], want)
		}
	}
}

// An invalid plan is refused with the reason, and the kernel keeps the
// ruleset it had.
func TestUpdateRefusesInvalidPlanAndKeepsRuleset(t *testing.T) {
	testns.NeedRoot(t)
	ns := testns.New(t, "fw-iv")
	s := newService(t, ns)
	if err := s.Apply(labPlan()); err != nil {
		t.Fatal(err)
	}
	before := testns.Exec(t, ns, "nft", "list", "ruleset")
	bad := labPlan()
	bad.TokenRules = append(bad.TokenRules, TokenRule{Token: a("2001:db8::80"), Ports: []Port{{TCP, 443}}})
	bad.PrefixRules = append(bad.PrefixRules, q("2001:db8:9999::/64"))
	err := s.Update(bad)
	if err == nil || !strings.Contains(err.Error(), "longer than 64 bits") || !strings.Contains(err.Error(), "outside the delegated prefix") {
		t.Fatalf("Update(bad) = %v, want both reasons", err)
	}
	if err := s.Apply(bad); err == nil {
		t.Fatal("Apply(bad) succeeded")
	}
	after := testns.Exec(t, ns, "nft", "list", "ruleset")
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("ruleset changed after a refused plan:\n%s", diff)
	}
	if st := s.Stats(); st.Failed != 2 || st.Applied != 1 || st.LastError == "" {
		t.Errorf("stats = %+v, want 1 applied, 2 failed, an error", st)
	}
}

func TestRemove(t *testing.T) {
	testns.NeedRoot(t)
	ns := testns.New(t, "fw-rm")
	s := newService(t, ns)
	if err := s.Remove(); err != nil {
		t.Fatalf("Remove without a table: %v", err)
	}
	if err := s.Apply(labPlan()); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(); err != nil {
		t.Fatal(err)
	}
	if got := listJSON(t, ns).tables; len(got) != 0 {
		t.Errorf("tables after Remove: %v", got)
	}
}

func newService(t *testing.T, ns string) *Service {
	t.Helper()
	f := testns.Open(t, ns)
	s, err := New(Config{NetNS: int(f.Fd())})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// addHosts adds n hosts to p, each exposing TCP and UDP 443 on two
// addresses of the LAN prefix.
func addHosts(p *Plan, n int) {
	for i := range n {
		p.HostRules = append(p.HostRules, HostRule{
			Host:  fmt.Sprintf("host%d", i),
			Addrs: []netip.Addr{a(fmt.Sprintf("2001:db8:1000:100::%x", 0x1000+i)), a(fmt.Sprintf("2001:db8:1000:100:%x::1", 0x1000+i))},
			Ports: []Port{{TCP, 443}, {UDP, 443}},
		})
	}
}

// Thousands of host addresses: the element lists are split so that no
// netlink attribute overflows its 16-bit length, and all arrive.
func TestApplyLargeSets(t *testing.T) {
	testns.NeedRoot(t)
	ns := testns.New(t, "fw-big")
	s := newService(t, ns)
	p := labPlan()
	addHosts(&p, 2000)
	if err := s.Apply(p); err != nil {
		t.Fatal(err)
	}
	rs := Render(p)
	want := len(rs.Set(setInboundHost).Services)
	if got := len(listJSON(t, ns).sets[setInboundHost]); got != want || want != 2+8000 {
		t.Errorf("inbound_host holds %d elements, want %d (8002)", got, want)
	}
}

// The daemon replans on every observation: an unchanged plan does not
// swap the table again.
func TestApplyUnchangedPlanIsNotSwapped(t *testing.T) {
	testns.NeedRoot(t)
	ns := testns.New(t, "fw-un")
	s := newService(t, ns)
	for range 3 {
		if err := s.Apply(labPlan()); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Stats().Applied; got != 1 {
		t.Errorf("applied %d times, want 1", got)
	}
	// Remove forgets the ruleset, so the next apply installs it again.
	if err := s.Remove(); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(labPlan()); err != nil {
		t.Fatal(err)
	}
	if got := listJSON(t, ns).tables; len(got) != 1 {
		t.Errorf("tables after re-apply: %v", got)
	}
}
