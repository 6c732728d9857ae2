// Package filtertest runs the services' classic BPF socket filters on a
// test's frames in golang.org/x/net/bpf's VM, as the kernel runs them on a
// packet socket, and checks their verdicts: the tests show which frames
// reach a service and which stay in the kernel without a socket.
package filtertest

import (
	"testing"

	"golang.org/x/net/bpf"
)

// Check fails t unless filter passes frame (keeps more than 0 bytes of
// it) when pass is set, and drops it (keeps 0) when it is not.
func Check(t testing.TB, filter []bpf.Instruction, frame []byte, pass bool) {
	t.Helper()
	vm, err := bpf.NewVM(filter)
	if err != nil {
		t.Fatalf("the filter does not load: %v", err)
	}
	n, err := vm.Run(frame)
	if err != nil {
		t.Fatalf("the filter fails on the frame: %v", err)
	}
	if (n > 0) != pass {
		t.Errorf("filter returned %d, want pass=%v", n, pass)
	}
}

// WithPktType is filter as the kernel runs it on a frame of packet type
// pkttype (SKF_AD_PKTTYPE, a PACKET_* number: 0 to this host, 1
// broadcast, 2 multicast, 3 to another host, 4 outgoing). x/net/bpf's VM
// has no extensions, so filter must begin with the load of the packet
// type, and that instruction becomes a load of the constant.
func WithPktType(t testing.TB, filter []bpf.Instruction, pkttype uint32) []bpf.Instruction {
	t.Helper()
	if len(filter) == 0 || filter[0] != bpf.Instruction(bpf.LoadExtension{Num: bpf.ExtType}) {
		t.Fatalf("the filter does not begin with the load of the packet type: %v", filter)
	}
	return append([]bpf.Instruction{bpf.LoadConstant{Dst: bpf.RegA, Val: pkttype}}, filter[1:]...)
}
