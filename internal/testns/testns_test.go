package testns

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// inode identifies a network namespace.
func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func nsInode(t *testing.T, ns string) uint64 { return inode(t, "/run/netns/"+ns) }

// selfInode is the namespace of the calling thread.
func selfInode(t *testing.T) uint64 { return inode(t, "/proc/thread-self/ns/net") }

func TestVethBetweenNamespaces(t *testing.T) {
	a, b := New(t, "tns-a"), New(t, "tns-b")
	if a == b || !strings.HasPrefix(a, "gzt-tns-a-") {
		t.Fatalf("names %q, %q", a, b)
	}
	Veth(t, a, "p0", b, "p1")
	Sysctl(t, a, "net.ipv6.conf.p0.accept_dad=0")
	Sysctl(t, b, "net.ipv6.conf.p1.accept_dad=0")
	IP(t, "-n", a, "link", "set", "p0", "up")
	IP(t, "-n", b, "link", "set", "p1", "up")
	IP(t, "-n", b, "addr", "add", "2001:db8::2/64", "dev", "p1", "nodad")
	WaitLinkLocal(t, a, "p0")
	WaitLinkLocal(t, b, "p1")
	IP(t, "-n", a, "addr", "add", "2001:db8::1/64", "dev", "p0", "nodad")
	Exec(t, a, "ping", "-c", "1", "-W", "5", "2001:db8::2")

	// Go code inside a: it sees p0 and not p1, and the calling goroutine's
	// thread stays where it was.
	before := selfInode(t)
	Inside(t, a, func() {
		if got := selfInode(t); got != nsInode(t, a) {
			t.Errorf("Inside ran in namespace %d, want %s (%d)", got, a, nsInode(t, a))
		}
		if _, err := net.InterfaceByName("p0"); err != nil {
			t.Errorf("p0 inside a: %v", err)
		}
	})
	if err := Do(a, func() error {
		_, err := net.InterfaceByName("p1")
		return err
	}); err == nil {
		t.Error("p1 is visible inside a")
	}
	var got uint64
	if err := Do(b, func() error { got = selfInode(t); return nil }); err != nil {
		t.Fatal(err)
	}
	if got != nsInode(t, b) {
		t.Errorf("Do ran in namespace %d, want %s (%d)", got, b, nsInode(t, b))
	}
	if after := selfInode(t); after != before {
		t.Errorf("the test's thread moved from namespace %d to %d", before, after)
	}
}

func TestStart(t *testing.T) {
	ns := New(t, "tns-run")
	want := nsInode(t, ns)
	running := make(chan uint64, 1)
	stop := Start(t, ns, func(ctx context.Context) error {
		running <- selfInode(t)
		<-ctx.Done()
		return errors.New("stopped")
	})
	if got := <-running; got != want {
		t.Errorf("run in namespace %d, want %d", got, want)
	}
	if err := stop(); err == nil || err.Error() != "stopped" {
		t.Errorf("stop = %v, want run's error", err)
	}
	if err := stop(); err == nil || err.Error() != "stopped" {
		t.Errorf("second stop = %v, want the same error", err)
	}
}

func TestCreateDelete(t *testing.T) {
	NeedRoot(t)
	ns, err := Create("tns-cd")
	if err != nil {
		t.Fatal(err)
	}
	out := Exec(t, ns, "ip", "-br", "link", "show", "lo")
	if !strings.Contains(out, "UP") && !strings.Contains(out, "UNKNOWN") {
		t.Errorf("lo is not up: %s", out)
	}
	if err := Delete(ns); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/run/netns/" + ns); !os.IsNotExist(err) {
		t.Errorf("namespace still there after Delete: %v", err)
	}
	if err := Do(ns, func() error { return nil }); err == nil {
		t.Error("Do in a deleted namespace succeeded")
	}
}

// ServeTCP's listener is inside the namespace: a client there reaches it,
// and each connection gets the handler.
func TestServeTCP(t *testing.T) {
	ns := New(t, "tns-tcp")
	addr := ServeTCP(t, ns, "tcp4", "127.0.0.1:0", func(c net.Conn) {
		defer c.Close()
		io.Copy(c, c)
	})
	for i := range 2 {
		var got []byte
		err := Do(ns, func() error {
			c, err := net.DialTimeout("tcp4", addr.String(), 2*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(2 * time.Second))
			if _, err := c.Write([]byte("ping")); err != nil {
				return err
			}
			got = make([]byte, 4)
			_, err = io.ReadFull(c, got)
			return err
		})
		if err != nil || string(got) != "ping" {
			t.Fatalf("connection %d: echoed %q, %v", i, got, err)
		}
	}
}
