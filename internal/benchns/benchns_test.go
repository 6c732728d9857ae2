package benchns

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"codeberg.org/monostack/gizmo/internal/testns"
)

// A routed chain has the router's two links in the right namespaces, Go
// runs code in the namespace it names, and Close leaves no namespace
// behind.
func TestRoutedChain(t *testing.T) {
	testns.NeedRoot(t)
	ch := NewChain("gzt-benchnstest")
	if err := ch.Run(ch.Routed()); err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			ch.Close()
		}
	}()
	for _, c := range []struct{ ns, dev string }{
		{ch.Client, "eth0"}, {ch.Router, "lan0"}, {ch.Router, "uplink0"}, {ch.Server, "eth0"},
	} {
		if _, err := Output(c.ns, "ip", "link", "show", c.dev); err != nil {
			t.Errorf("%s has no %s: %v", c.ns, c.dev, err)
		}
	}
	if err := <-Go(ch.Router, func() error {
		_, err := net.InterfaceByName("uplink0")
		return err
	}); err != nil {
		t.Errorf("Go did not run in %s: %v", ch.Router, err)
	}
	ch.Close()
	closed = true
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{ch.Client, ch.Router, ch.Server} {
		if strings.Contains(string(out), ns) {
			t.Errorf("%s is still there after Close", ns)
		}
	}
}

// A failing step closes the chain and names the command in its error.
func TestRunFailureCloses(t *testing.T) {
	testns.NeedRoot(t)
	ch := NewChain("gzt-benchnstest")
	err := ch.Run(append(ch.Namespaces(), In(ch.Client, "ip", "link", "set", "nonexistent0", "up")))
	if err == nil || !strings.Contains(err.Error(), "nonexistent0") {
		t.Fatalf("Run = %v, want the failing command's error", err)
	}
	if _, err := os.Stat("/run/netns/" + ch.Client); !os.IsNotExist(err) {
		t.Errorf("%s is still there after a failed Run (stat: %v)", ch.Client, err)
	}
}
