package web

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

// The status names the line, and the overview says it in words: a line
// without IPv4 says so, and the CLAT's translation shows while it runs.
func TestStatusNamesTheLine(t *testing.T) {
	for _, tc := range []struct {
		line     state.Line
		clat     state.CLATStatus
		api      []string
		overview string
	}{
		{state.LineIPv6Only, state.CLATStatus{}, []string{`"line":"ipv6-only"`}, "This line has no IPv4"},
		{state.LineIPv6OnlyNAT64, state.CLATStatus{Address: netip.MustParseAddr("2001:db8:1000:1ff::464"), Pref64: netip.MustParsePrefix("2001:db8:46::/96")},
			[]string{`"line":"ipv6-only-nat64"`, `"clat":{"address":"2001:db8:1000:1ff::464","pref64":"2001:db8:46::/96"}`}, "CLAT 2001:db8:1000:1ff::464"},
		{state.LineDualStack, state.CLATStatus{}, []string{`"line":"dual-stack"`}, "dual-stack"},
		{"", state.CLATStatus{}, []string{`"line":""`}, "Not known yet"},
	} {
		t.Run(string(tc.line), func(t *testing.T) {
			s, b := newTestServer(t)
			b.mu.Lock()
			b.st.Line, b.st.CLAT = tc.line, tc.clat
			b.mu.Unlock()
			w := do(t, s, "GET", "/api/status", "", nil)
			for _, want := range tc.api {
				if !strings.Contains(w.Body.String(), want) {
					t.Errorf("/api/status lacks %s: %s", want, w.Body)
				}
			}
			if !tc.clat.Address.IsValid() && strings.Contains(w.Body.String(), `"clat"`) {
				t.Errorf("/api/status shows a CLAT that does not run: %s", w.Body)
			}
			if w := do(t, s, "GET", "/", "", nil); !strings.Contains(w.Body.String(), tc.overview) {
				t.Errorf("the overview lacks %q", tc.overview)
			}
		})
	}
}

// RFC 6334: the overview names the AFTR of a DS-Lite line; on other lines
// there is no softwire to show.
func TestStatusNamesTheAFTR(t *testing.T) {
	st := state.State{Line: state.LineDSLite}
	st.WAN.AFTRName, st.WAN.AFTR = "aftr.example.test", netip.MustParseAddr("2001:db8:0:5::1")
	s := statusOf(st, time.Now())
	if s.Line != "ds-lite" || s.DSLite == nil || s.DSLite.AFTR != "2001:db8:0:5::1" {
		t.Fatalf("status line %q dslite %+v", s.Line, s.DSLite)
	}
	if got := s.LineText(); got != "DS-Lite (AFTR aftr.example.test)" {
		t.Errorf("LineText %q", got)
	}
	st.Line = state.LineDualStack
	if s := statusOf(st, time.Now()); s.DSLite != nil || s.LineText() != "IPv6 and IPv4 (dual-stack)" {
		t.Errorf("dual-stack: %+v %q", s.DSLite, s.LineText())
	}
}
