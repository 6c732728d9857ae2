// Package bpftest holds what the tests of the services' tc programs share
// when they run them on packets of their own with BPF_PROG_TEST_RUN: the
// loading of the programs, one run on a frame and the verdicts it returns,
// the Ethernet frame around a test packet, and the transport segments and
// checksums (RFC 1071) of the packets the tests build, computed here
// rather than by the program under test.
package bpftest

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/cilium/ebpf"

	"codeberg.org/monostack/gizmo/internal/ethframe"
	"codeberg.org/monostack/gizmo/internal/testns"
)

// Verdicts of tc programs as BPF_PROG_TEST_RUN reports them (a uint32).
const (
	ActOK       = 0 // TC_ACT_OK: to the stack
	ActShot     = 2 // TC_ACT_SHOT: dropped
	ActRedirect = 7 // TC_ACT_REDIRECT: bpf_redirect's target
	// ActNext is TC_ACT_UNSPEC (-1), TCX_NEXT: not the program's, the
	// next program on the hook runs.
	ActNext = 1<<32 - 1
)

// Frame is the Ethernet frame from src to dst around the IP packet l3,
// with the EtherType of its IP version.
func Frame(dst, src net.HardwareAddr, l3 []byte) []byte {
	if len(l3) > 0 && l3[0]>>4 == 6 {
		return ethframe.Ethernet(dst, src, ethframe.TypeIPv6, l3)
	}
	return ethframe.Ethernet(dst, src, ethframe.TypeIPv4, l3)
}

// MSS returns the value of the MSS option (RFC 9293 §3.2, kind 2) of the
// TCP header tcp, and whether it has one: the tests check what a program's
// clamping left there.
func MSS(tcp []byte) (uint16, bool) {
	hl := int(tcp[12]>>4) * 4
	o := tcp[20:hl]
	for i := 0; i < len(o); {
		switch o[i] {
		case 0: // end of the option list
			return 0, false
		case 1: // no-operation, one byte
			i++
			continue
		case 2:
			if i+4 > len(o) {
				return 0, false
			}
			return binary.BigEndian.Uint16(o[i+2:]), true
		}
		if i+1 >= len(o) || o[i+1] < 2 {
			return 0, false
		}
		i += int(o[i+1])
	}
	return 0, false
}

// Run runs prog once on frame with BPF_PROG_TEST_RUN and returns its
// verdict and the frame as the program left it, which may have grown (by
// an encapsulation, or a translation to IPv6) by up to 2048 bytes.
func Run(t testing.TB, prog *ebpf.Program, frame []byte) (uint32, []byte) {
	t.Helper()
	ro := &ebpf.RunOptions{Data: frame, DataOut: make([]byte, len(frame)+2048)}
	ret, err := prog.Run(ro)
	if err != nil {
		t.Fatalf("test run: %v", err)
	}
	// cilium/ebpf cuts ro.DataOut to what the kernel wrote.
	return ret, ro.DataOut
}

// Counter returns the counter name of the ones counters reads from a
// datapath's maps, and fails t when there is no such counter, so that a
// misspelt name cannot read as zero.
func Counter(t testing.TB, counters func() (map[string]uint64, error), name string) uint64 {
	t.Helper()
	c, err := counters()
	if err != nil {
		t.Fatal(err)
	}
	v, ok := c[name]
	if !ok {
		t.Fatalf("no counter %q", name)
	}
	return v
}

// Load loads a service's programs and maps with load for a test that runs
// them with BPF_PROG_TEST_RUN (which needs root: the test is skipped
// otherwise) and releases them with release when the test ends.
func Load[D any](t testing.TB, load func() (D, error), release func(D)) D {
	t.Helper()
	testns.NeedRoot(t)
	d, err := load()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { release(d) })
	return d
}
