package filtertest

import (
	"testing"

	"golang.org/x/net/bpf"
)

// A filter that keeps frames sent to this host (PACKET_HOST, 0) and drops
// the host's own outgoing ones (PACKET_OUTGOING, 4), as the services'
// filters do, and one that keeps only frames of at least 14 bytes.
func TestCheck(t *testing.T) {
	notOutgoing := []bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 4, SkipTrue: 1},
		bpf.RetConstant{Val: 1 << 16},
		bpf.RetConstant{Val: 0},
	}
	ethernet := []bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtLen},
		bpf.JumpIf{Cond: bpf.JumpLessThan, Val: 14, SkipTrue: 1},
		bpf.RetA{},
		bpf.RetConstant{Val: 0},
	}
	frame := make([]byte, 60)
	for _, tc := range []struct {
		name   string
		filter []bpf.Instruction
		frame  []byte
		pass   bool
	}{
		{"PACKET_HOST passes", WithPktType(t, notOutgoing, 0), frame, true},
		{"PACKET_OTHERHOST passes", WithPktType(t, notOutgoing, 3), frame, true},
		{"PACKET_OUTGOING is dropped", WithPktType(t, notOutgoing, 4), frame, false},
		{"a whole Ethernet header passes", ethernet, frame, true},
		{"a frame shorter than an Ethernet header is dropped", ethernet, frame[:13], false},
	} {
		t.Run(tc.name, func(t *testing.T) { Check(t, tc.filter, tc.frame, tc.pass) })
	}
}

// WithPktType replaces only the first instruction, the load of the packet
// type; the rest of the filter stays as it is.
func TestWithPktType(t *testing.T) {
	filter := []bpf.Instruction{bpf.LoadExtension{Num: bpf.ExtType}, bpf.RetA{}}
	got := WithPktType(t, filter, 2)
	if len(got) != 2 || got[0] != bpf.Instruction(bpf.LoadConstant{Dst: bpf.RegA, Val: 2}) || got[1] != filter[1] {
		t.Errorf("WithPktType = %v", got)
	}
	if filter[0] != bpf.Instruction(bpf.LoadExtension{Num: bpf.ExtType}) {
		t.Errorf("WithPktType changed the filter it was given: %v", filter)
	}
}
