package targetkernel

import (
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The cost of a program per packet, measured with BPF_PROG_TEST_RUN. Each
// run is one syscall with repeat 1: a tc program's changes to the skb (a
// translation, a trimmed tail) stay for the next repeat, which would then
// measure a different packet. The kernel times the run alone, from just
// before the program to just after it; the figure still holds a constant of
// the runner's own (its clock reads, the bottom-half and migration
// guards), which the pass-through program measures: a tc program that
// returns TC_ACT_OK and touches nothing, run on the same packet in the same
// VM, interleaved with the program measured.
//
// Under qemu's TCG every guest instruction is emulated, so a
// nanosecond of the guest's clock says little about real hardware; with
// Options.Icount the guest's clock counts the instructions it executed
// (one nanosecond each), which makes a run's duration the number of guest
// x86 instructions it took: the interpreter's loop and the helpers it
// calls. That number is deterministic and the same on any machine running
// the same kernel binary; the time it takes is that count over the
// machine's instructions per second.

// PassThrough loads the reference program: return TC_ACT_OK.
func PassThrough() (*ebpf.Program, error) {
	return returning("pass_through", ebpf.SchedCLS, 0) // TC_ACT_OK
}

// returning loads a program that only returns verdict.
func returning(name string, typ ebpf.ProgramType, verdict int32) (*ebpf.Program, error) {
	return ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         name,
		Type:         typ,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, verdict), asm.Return()},
		License:      "Dual BSD/GPL",
	})
}

// Cost is what a program took per packet, median of the runs, and what
// the pass-through program took on the same packet.
type Cost struct {
	Prog, Ref time.Duration
	Verdict   uint32 // the program's, on the last run
}

// Net is the program's own cost: its runs less the runner's constant.
func (c Cost) Net() time.Duration { return c.Prog - c.Ref }

// Ratio is the program's runs over the pass-through's.
func (c Cost) Ratio() float64 {
	if c.Ref <= 0 {
		return 0
	}
	return float64(c.Prog) / float64(c.Ref)
}

// MeasureCost runs prog and ref n times each, alternately, each run on the
// frame frames(i) returns for run i (the same frame every time for a packet
// of an existing flow; a new one for a packet that opens a flow) and with
// the struct __sk_buff fields in ctx (nil: none), and returns the medians.
func MeasureCost(prog, ref *ebpf.Program, frames func(i int) []byte, ctx []byte, n int) (Cost, error) {
	var c Cost
	var p, r []time.Duration
	for i := range n {
		f := frames(i)
		ret, d, err := testRun(prog, f, ctx)
		if err != nil {
			return c, fmt.Errorf("run: %w", err)
		}
		c.Verdict = ret
		p = append(p, d)
		if _, d, err = testRun(ref, f, ctx); err != nil {
			return c, fmt.Errorf("run the pass-through program: %w", err)
		}
		r = append(r, d)
	}
	c.Prog, c.Ref = median(p), median(r)
	return c, nil
}

// progRunAttr is union bpf_attr's test member (BPF_PROG_TEST_RUN).
type progRunAttr struct {
	progFD      uint32
	retval      uint32
	dataSizeIn  uint32
	dataSizeOut uint32
	dataIn      uint64
	dataOut     uint64
	repeat      uint32
	duration    uint32
	ctxSizeIn   uint32
	ctxSizeOut  uint32
	ctxIn       uint64
	ctxOut      uint64
	flags       uint32
	cpu         uint32
	batchSize   uint32
	_           uint32
}

// testRun runs prog once on data with the context ctx and returns its
// verdict and the duration the kernel measured. (cilium/ebpf's Benchmark
// takes no context.)
func testRun(prog *ebpf.Program, data, ctx []byte) (uint32, time.Duration, error) {
	attr := progRunAttr{
		progFD:     uint32(prog.FD()),
		dataSizeIn: uint32(len(data)),
		dataIn:     uint64(uintptr(unsafe.Pointer(unsafe.SliceData(data)))),
		repeat:     1,
		ctxSizeIn:  uint32(len(ctx)),
	}
	if len(ctx) > 0 {
		attr.ctxIn = uint64(uintptr(unsafe.Pointer(unsafe.SliceData(ctx))))
	}
	for {
		_, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_TEST_RUN, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
		runtime.KeepAlive(data)
		runtime.KeepAlive(ctx)
		switch errno {
		case 0:
			return attr.retval, time.Duration(attr.duration), nil
		case unix.EINTR:
			continue
		}
		return 0, 0, fmt.Errorf("BPF_PROG_TEST_RUN: %w", errno)
	}
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// Translated is the number of instructions the kernel runs for prog: the
// verified, rewritten program (xlated_prog_len / 8) that the interpreter
// walks, subprograms included.
func Translated(prog *ebpf.Program) (int, error) {
	info, err := prog.Info()
	if err != nil {
		return 0, err
	}
	n, err := info.TranslatedSize()
	if err != nil {
		return 0, err
	}
	return n / asm.InstructionSize, nil
}

// Jited reports whether the kernel compiled prog to machine code.
func Jited(prog *ebpf.Program) bool {
	info, err := prog.Info()
	if err != nil {
		return false
	}
	_, err = info.JitedSize()
	return err == nil
}

// The kernel's own path for a packet, around the programs: an XDP program
// that passes every frame, run with BPF_F_TEST_XDP_LIVE_FRAMES, hands each
// frame to the stack as if the interface had received it (an skb is built
// and goes through the tc hooks, the routing or the programs' redirect, and
// the egress interface's transmit), and the kernel times the whole batch.
// What it leaves out is the NIC's driver: on real hardware the receive and
// transmit descriptors, DMA and interrupts come on top.

// XDPPass loads the XDP program that passes every frame.
func XDPPass() (*ebpf.Program, error) {
	return returning("xdp_pass", ebpf.XDP, 2) // XDP_PASS
}

// xdpMD is struct xdp_md, the context of an XDP test run.
type xdpMD struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// MeasurePath injects frame as received on ingress, through XDPPass (xdp)
// in live-frames mode, and returns the median time per frame of n runs
// of PathBatch frames each. Each frame of a run gets a page of its own:
// the kernel writes the data into a page only the first time the run's
// page pool hands it out, and forwarding changes the packet in place (hop
// limit, MAC header, a translation), so a recycled page would carry the
// changed packet.
func MeasurePath(xdp *ebpf.Program, frame []byte, ingress, n int) (time.Duration, error) {
	var ds []time.Duration
	for range n {
		d, err := live(xdp, frame, ingress, PathBatch)
		if err != nil {
			return 0, err
		}
		ds = append(ds, d)
	}
	return median(ds), nil
}

// Inject sends frame once through the router as received on ingress, the
// way MeasurePath does: for the packets that open a flow before it is
// measured.
func Inject(xdp *ebpf.Program, frame []byte, ingress int) error {
	_, err := live(xdp, frame, ingress, 1)
	return err
}

// live runs xdp on repeat copies of frame in live-frames mode and returns
// the time per frame the kernel measured.
func live(xdp *ebpf.Program, frame []byte, ingress int, repeat uint32) (time.Duration, error) {
	ctx := xdpMD{DataEnd: uint32(len(frame)), IngressIfindex: uint32(ingress)}
	attr := progRunAttr{
		progFD:     uint32(xdp.FD()),
		dataSizeIn: uint32(len(frame)),
		dataIn:     uint64(uintptr(unsafe.Pointer(unsafe.SliceData(frame)))),
		repeat:     repeat,
		ctxSizeIn:  uint32(unsafe.Sizeof(ctx)),
		ctxIn:      uint64(uintptr(unsafe.Pointer(&ctx))),
		flags:      unix.BPF_F_TEST_XDP_LIVE_FRAMES,
		batchSize:  min(repeat, PathBatch),
	}
	for {
		_, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_TEST_RUN, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
		runtime.KeepAlive(frame)
		runtime.KeepAlive(&ctx)
		switch errno {
		case 0:
			return time.Duration(attr.duration), nil
		case unix.EINTR:
			continue
		}
		return 0, fmt.Errorf("BPF_PROG_TEST_RUN (live frames): %w", errno)
	}
}

// PathBatch is the number of frames of one MeasurePath run: the largest
// batch of a live-frames run (the kernel's TEST_XDP_MAX_BATCH).
const PathBatch = 256

// InNewNetns moves the calling goroutine, locked to its thread, into a new
// network namespace, for the links, routes and FIB of a cost measurement
// (BPF_PROG_TEST_RUN runs in the caller's namespace). The function it
// returns moves it back.
func InNewNetns(t testing.TB) func() {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	ns, err := netns.New()
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	return func() {
		ns.Close()
		netns.Set(orig)
		orig.Close()
		runtime.UnlockOSThread()
	}
}
