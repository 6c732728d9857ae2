package zeroconf

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"codeberg.org/monostack/gizmo/lab/netlab"
)

// crashPolicy is the policy the test gives gz-lan-legacy before the kills.
const crashPolicy = `{"dns64":true,"v6only_preferred":true,"hostname":"crash-proof","exposed_ports":["tcp/8443"]}`

type hostView struct {
	IPv4Lease string          `json:"ipv4_lease"`
	Policy    json.RawMessage `json:"policy"`
}

func apiHostView(ctx context.Context, mac string) (hostView, error) {
	var h hostView
	return h, apiJSON(ctx, "/api/hosts/"+mac, &h)
}

func putPolicy(t *testing.T, ctx context.Context, l *netlab.Lab, mac, body string) {
	t.Helper()
	if _, err := l.DashboardAPI(ctx, http.MethodPut, "/api/hosts/"+mac+"/policy", body); err != nil {
		t.Fatalf("policy %s: %v", body, err)
	}
}

// nftDuplicates lists what is doubled in gz-gizmo's ruleset: tables named
// gizmo or gizmo_acct other than exactly once, and rules that appear twice
// in one chain (counter values aside).
func nftDuplicates(ctx context.Context, l *netlab.Lab) ([]string, error) {
	out, err := l.Exec(ctx, netlab.NSGizmo, "nft", "-j", "list", "ruleset")
	if err != nil {
		return nil, err
	}
	var rs struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(out, &rs); err != nil {
		return nil, fmt.Errorf("nft -j: %w", err)
	}
	var problems []string
	tables := map[string]int{}
	rules := map[string]int{}
	for _, obj := range rs.Nftables {
		if raw, ok := obj["table"]; ok {
			var tb struct{ Name string }
			json.Unmarshal(raw, &tb)
			tables[tb.Name]++
		}
		if raw, ok := obj["rule"]; ok {
			var r struct {
				Family, Table, Chain string
				Expr                 []map[string]any
			}
			json.Unmarshal(raw, &r)
			for _, e := range r.Expr {
				if _, ok := e["counter"]; ok {
					e["counter"] = nil
				}
			}
			b, _ := json.Marshal(r)
			rules[string(b)]++
		}
	}
	for _, name := range []string{"gizmo", "gizmo_acct"} {
		if tables[name] != 1 {
			problems = append(problems, fmt.Sprintf("%d tables named %s", tables[name], name))
		}
	}
	for r, n := range rules {
		if n > 1 {
			problems = append(problems, fmt.Sprintf("rule %dx: %s", n, r))
		}
	}
	return problems, nil
}

// tcxPrograms counts the BPF programs attached by tcx to each of gz-gizmo's
// ports, per hook ("lan0/ingress": 1).
func tcxPrograms() (map[string]int, error) {
	counts := map[string]int{}
	err := netlab.InNamespace(netlab.NSGizmo, func() error {
		for _, ifname := range []string{"lan0", "uplink0"} {
			ifi, err := net.InterfaceByName(ifname)
			if err != nil {
				return err
			}
			for hook, at := range map[string]ebpf.AttachType{"ingress": ebpf.AttachTCXIngress, "egress": ebpf.AttachTCXEgress} {
				res, err := link.QueryPrograms(link.QueryOptions{Target: ifi.Index, Attach: at})
				if err != nil {
					return fmt.Errorf("query tcx %s %s: %w", ifname, hook, err)
				}
				counts[ifname+"/"+hook] = len(res.Programs)
			}
		}
		return nil
	})
	return counts, err
}

// Issue 9, crash safety: SIGKILL the gizmo at random moments, 50 times. Each
// time it comes back (the lab restarts it after 1 s, like gokrazy) with the
// legacy host's lease and policy, without doubled nftables tables or rules
// or tcx programs, and the LAN hosts keep their connectivity.
func TestCrashSafety(t *testing.T) {
	if os.Getenv("GIZMO_SLOW") == "" {
		t.Skip("slow (50 kills): set GIZMO_SLOW=1")
	}
	l := upScenario(t, "pd56")
	ctx := testContext(t, 12*time.Minute)
	v6URL := "http://[" + netlab.V6OnlyServer.String() + "]/"

	var before hostView
	if err := netlab.WaitFor(ctx, "gz-lan-legacy's lease", func(ctx context.Context) (bool, error) {
		h, err := apiHostView(ctx, netlab.MACLanLegacy)
		before = h
		return err == nil && h.IPv4Lease != "", nil
	}); err != nil {
		t.Fatal(err)
	}
	putPolicy(t, ctx, l, netlab.MACLanLegacy, crashPolicy)
	before, err := apiHostView(ctx, netlab.MACLanLegacy)
	if err != nil {
		t.Fatal(err)
	}
	// The delegation may have arrived a moment ago: gz-lan-v6 reaches the
	// internet natively once it has an address in the delegated prefix
	// (SLAAC and DAD after the gizmo's RA); before that its only global
	// source would be the ULA, which is never routed to the WAN.
	var lastErr error
	if err := netlab.WaitFor(ctx, "gz-lan-v6 fetching natively before the kills", func(ctx context.Context) (bool, error) {
		_, lastErr = netlab.HTTPGet(ctx, netlab.NSLanV6, v6URL)
		return lastErr == nil, nil
	}); err != nil {
		t.Fatalf("%v: %v", err, lastErr)
	}
	var baseline map[string]int
	if err := netlab.WaitFor(ctx, "the NAT64 datapath", func(context.Context) (bool, error) {
		c, err := tcxPrograms()
		baseline = c
		return err == nil && c["lan0/ingress"] > 0 && c["uplink0/ingress"] > 0, nil
	}); err != nil {
		t.Fatalf("%v: %v", err, baseline)
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	for i := 1; i <= 50; i++ {
		// Anywhere from just after the start (mid-setup) to well into
		// steady state.
		time.Sleep(time.Duration(rng.Int64N(int64(3 * time.Second))))
		starts, _ := l.GizmoStarts()
		if err := l.GizmoKill(); err != nil {
			t.Fatalf("kill %d: %v", i, err)
		}
		if err := l.WaitGizmoStarts(ctx, starts+1); err != nil {
			t.Fatalf("kill %d: the gizmo did not come back: %v", i, err)
		}
		var after hostView
		var lastErr error
		if err := netlab.WaitFor(ctx, "the API after a restart", func(ctx context.Context) (bool, error) {
			after, lastErr = apiHostView(ctx, netlab.MACLanLegacy)
			return lastErr == nil, nil
		}); err != nil {
			t.Fatalf("kill %d: %v (last %v)", i, err, lastErr)
		}
		if after.IPv4Lease != before.IPv4Lease || !jsonEqual(after.Policy, before.Policy) {
			t.Errorf("kill %d: gz-lan-legacy now lease %q policy %s; before lease %q policy %s",
				i, after.IPv4Lease, after.Policy, before.IPv4Lease, before.Policy)
		}
		// The daemon rebuilds its ruleset and datapath at start; wait
		// until it has, then nothing may be doubled.
		// Each check gets 20 s after the restart, which the daemon needs
		// at most to rebuild its ruleset and datapath.
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		// The NAT64's links are pinned and outlive the process; the fast
		// path's die with it and come back when it attaches again. So wait
		// for the baseline, but a hook holding more programs than before
		// is a doubled datapath at once.
		var progs map[string]int
		if err := netlab.WaitFor(wctx, "the datapath after a restart", func(context.Context) (bool, error) {
			c, err := tcxPrograms()
			progs = c
			if err != nil {
				return false, nil
			}
			for hook, n := range c {
				if n > baseline[hook] {
					return false, fmt.Errorf("%s holds %d programs, %d before the kills", hook, n, baseline[hook])
				}
			}
			return reflect.DeepEqual(c, baseline), nil
		}); err != nil {
			cancel()
			t.Fatalf("kill %d: %v: tcx programs %v, before the kills %v", i, err, progs, baseline)
		}
		var problems []string
		if err := netlab.WaitFor(wctx, "the ruleset after a restart", func(ctx context.Context) (bool, error) {
			p, err := nftDuplicates(ctx, l)
			problems = p
			return err == nil && len(p) == 0, nil
		}); err != nil {
			t.Errorf("kill %d: nftables: %v: %s", i, err, strings.Join(problems, "; "))
		}
		if _, err := l.WaitExec(wctx, netlab.NSLanV6, func(string) bool { return true },
			"curl", "-sS", "-g", "--max-time", "2", v6URL); err != nil {
			t.Errorf("kill %d: gz-lan-v6 lost its connectivity: %v", i, err)
		}
		cancel()
		if t.Failed() {
			return
		}
	}
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
