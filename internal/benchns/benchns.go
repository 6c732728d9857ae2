// Package benchns builds the network namespaces the benchmark programs
// measure in (a client ── router ── server chain per mode), runs commands
// and Go code inside them, and takes them down again.
package benchns

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
)

// Sh runs a command; its error carries the command line and its output.
func Sh(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// In is the command line that runs args in namespace ns.
func In(ns string, args ...string) []string {
	return append([]string{"ip", "netns", "exec", ns}, args...)
}

// Output runs args in namespace ns and returns what it wrote to stdout.
func Output(ns string, args ...string) ([]byte, error) {
	return exec.Command("ip", In(ns, args...)[1:]...).Output()
}

// Chain names one mode's three namespaces.
type Chain struct {
	Client, Router, Server string
}

// NewChain names a chain's namespaces after prefix and a random number, so
// that a bench left behind by a crash does not collide with the next. It
// creates nothing: Namespaces or Routed are the first steps to Run.
func NewChain(prefix string) Chain {
	id := fmt.Sprintf("%s-%04x", prefix, rand.IntN(0x10000))
	return Chain{Client: id + "-c", Router: id + "-r", Server: id + "-s"}
}

// Namespaces are the steps that create the three namespaces, loopback up.
func (ch Chain) Namespaces() [][]string {
	return [][]string{
		{"ip", "netns", "add", ch.Client}, {"ip", "netns", "add", ch.Router}, {"ip", "netns", "add", ch.Server},
		In(ch.Client, "ip", "link", "set", "lo", "up"),
		In(ch.Router, "ip", "link", "set", "lo", "up"),
		In(ch.Server, "ip", "link", "set", "lo", "up"),
	}
}

// Routed are Namespaces and the two links of a router between its LAN and
// its WAN: the router's lan0 to the client's eth0, the router's uplink0 to
// the server's eth0. The links are still down and without addresses.
func (ch Chain) Routed() [][]string {
	return append(ch.Namespaces(),
		[]string{"ip", "link", "add", "lan0", "netns", ch.Router, "type", "veth", "peer", "name", "eth0", "netns", ch.Client},
		[]string{"ip", "link", "add", "uplink0", "netns", ch.Router, "type", "veth", "peer", "name", "eth0", "netns", ch.Server},
	)
}

// Run runs steps in order, and closes ch at the first that fails.
func (ch Chain) Run(steps [][]string) error {
	for _, s := range steps {
		if err := Sh(s...); err != nil {
			ch.Close()
			return err
		}
	}
	return nil
}

// Close kills what runs in the namespaces and deletes them.
func (ch Chain) Close() {
	for _, ns := range []string{ch.Client, ch.Router, ch.Server} {
		if out, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil {
			for _, p := range strings.Fields(string(out)) {
				// This process has threads in the namespaces too.
				if p != fmt.Sprint(os.Getpid()) {
					exec.Command("kill", "-9", p).Run()
				}
			}
		}
		exec.Command("ip", "netns", "del", ns).Run()
	}
}

// masquerade is kernel NAT44 (conntrack masquerade) out of the uplink.
const masquerade = `table ip benchnat {
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "uplink0" masquerade
	}
}
`

// Masquerade makes the router NAT44 what leaves through its uplink0: the
// path legacy IPv4 takes through a classic home router.
func (ch Chain) Masquerade() error {
	f := filepath.Join(os.TempDir(), ch.Router+".nft")
	if err := os.WriteFile(f, []byte(masquerade), 0o600); err != nil {
		return err
	}
	defer os.Remove(f)
	return Sh(In(ch.Router, "nft", "-f", f)...)
}

// Go runs f on a goroutine whose thread is in namespace ns, so that the
// sockets and links f makes are there, and delivers f's error (or the
// failure to enter ns) on the channel.
func Go(ns string, f func() error) <-chan error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		h, err := netns.GetFromName(ns)
		if err == nil {
			err = netns.Set(h)
			h.Close()
		}
		if err != nil {
			done <- err
			return
		}
		done <- f()
	}()
	return done
}
