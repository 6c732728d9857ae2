package vlan

import (
	"testing"

	"github.com/cilium/ebpf"

	"codeberg.org/monostack/gizmo/internal/bpftest"
	"codeberg.org/monostack/gizmo/internal/targetkernel"
	"codeberg.org/monostack/gizmo/internal/testns"
)

// The programs' decisions through BPF_PROG_TEST_RUN, without a port. The
// kernel builds the skb from the frame's bytes, so a tag never sits in the
// skb's metadata here (on a real port the NIC or the core moves it there):
// what a tagged frame does is for the namespace tests.

const (
	verdictNext = 0xffffffff // TCX_NEXT (-1)
	verdictDrop = 2          // TCX_DROP
)

// loaded is a tagger with its programs loaded and the VID written (none
// for 0), attached nowhere.
func loaded(t *testing.T, id uint16) *Tagger {
	t.Helper()
	testns.NeedRoot(t)
	tg := &Tagger{promisc: -1}
	t.Cleanup(func() { tg.Close() })
	if err := tg.load(id); err != nil {
		t.Fatal(err)
	}
	return tg
}

// untaggedFrame is an Ethernet frame with an IPv6 header and no tag.
func untaggedFrame() []byte {
	frame := []byte{0x02, 0, 0, 0, 0, 0xb, 0x02, 0, 0, 0, 0, 0xa, 0x86, 0xdd}
	ip6 := make([]byte, 40)
	ip6[0], ip6[6], ip6[7] = 6<<4, 59, 64 // no next header
	return append(frame, ip6...)
}

func run(t *testing.T, prog *ebpf.Program) uint32 {
	t.Helper()
	ret, _ := bpftest.Run(t, prog, untaggedFrame())
	return ret
}

func TestProgramVerdicts(t *testing.T) {
	for _, c := range []struct {
		name    string
		id      uint16
		egress  bool
		verdict uint32
		want    Stats
	}{
		{"IEEE 802.1Q: an untagged frame is not on the VLAN and is dropped on ingress", 7, false, verdictDrop, Stats{DroppedUntagged: 1}},
		{"IEEE 802.1Q: an untagged frame leaves tagged and goes on to the next program", 7, true, verdictNext, Stats{Sent: 1}},
		{"the highest VID tags too", MaxID, true, verdictNext, Stats{Sent: 1}},
		{"no VID written: ingress drops rather than guess", 0, false, verdictDrop, Stats{Failed: 1}},
		{"no VID written: egress drops rather than send untagged", 0, true, verdictDrop, Stats{Failed: 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tg := loaded(t, c.id)
			prog := tg.objs.VlanIngress
			if c.egress {
				prog = tg.objs.VlanEgress
			}
			if got := run(t, prog); got != c.verdict {
				t.Errorf("verdict %#x, want %#x", got, c.verdict)
			}
			if s := stats(t, tg); s != c.want {
				t.Errorf("stats %+v, want %+v", s, c.want)
			}
		})
	}
}

// TestTargetKernelQEMU boots gokrazy's kernel.amd64 (no BTF, no BPF JIT)
// under qemu with this test binary as init and runs TestProgramVerdicts
// there: the verifier of the kernel the appliance runs loads both
// programs.

func TestMain(m *testing.M) { targetkernel.Main(m) }

func TestTargetKernelQEMU(t *testing.T) {
	targetkernel.Run(t, targetkernel.Options{
		MustPass: "TestProgramVerdicts",
		// The namespace tests need iproute2, which the VM does not have.
		Run: "^TestProgramVerdicts$",
	})
}
