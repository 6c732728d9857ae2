package packetsock

import (
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/testns"
)

// dropAll is a filter that passes nothing.
var dropAll = []bpf.Instruction{bpf.RetConstant{Val: 0}}

// allMulti reports whether dev in ns has IFF_ALLMULTI set.
func allMulti(t *testing.T, ns, dev string) bool {
	t.Helper()
	out := strings.TrimSpace(testns.Exec(t, ns, "cat", "/sys/class/net/"+dev+"/flags"))
	flags, err := strconv.ParseUint(strings.TrimPrefix(out, "0x"), 16, 32)
	if err != nil {
		t.Fatalf("flags of %s: %q: %v", dev, out, err)
	}
	return flags&unix.IFF_ALLMULTI != 0
}

// The all-multicast membership lasts as long as the socket: the kernel
// drops it on close.
func TestAllMulticastLastsWhileSocketOpen(t *testing.T) {
	ns := testns.New(t, "pktsock")
	testns.Veth(t, ns, "d0", ns, "d1")
	testns.Exec(t, ns, "ip", "link", "set", "d0", "up")
	testns.Inside(t, ns, func() {
		ifi, err := net.InterfaceByName("d0")
		if err != nil {
			t.Fatal(err)
		}
		c, err := Listen(ifi, packet.Datagram, unix.ETH_P_IPV6, dropAll)
		if err != nil {
			t.Fatal(err)
		}
		ForceReadBuffer(c, 1<<20)
		if err := AllMulticast(c, ifi); err != nil {
			t.Fatal(err)
		}
		if !allMulti(t, ns, "d0") {
			t.Error("d0 not all-multicast with the socket open")
		}
		c.Close()
		if allMulti(t, ns, "d0") {
			t.Error("d0 still all-multicast after the socket closed")
		}
	})
}

func TestListenNamesMissingInterface(t *testing.T) {
	testns.NeedRoot(t)
	_, err := Listen(&net.Interface{Index: 1 << 20, Name: "gone0"}, packet.Raw, unix.ETH_P_ALL, dropAll)
	if err == nil || !strings.Contains(err.Error(), "gone0") {
		t.Fatalf("Listen = %v, want an error naming gone0", err)
	}
}

func TestAttachFilter(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := AttachFilter(fd, dropAll); err != nil {
		t.Errorf("valid program: %v", err)
	}
	// A jump past the end does not assemble into a program the kernel
	// would take.
	bad := []bpf.Instruction{bpf.Jump{Skip: 5}}
	if err := AttachFilter(fd, bad); err == nil {
		t.Error("invalid program attached")
	}
}
