package web

import (
	"net/netip"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
)

func TestStatusNamesTheLine(t *testing.T) {
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
