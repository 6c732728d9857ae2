package dhcp6info

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/lab/deps"
	"codeberg.org/monostack/gizmo/lab/deps/depstest"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv6"

	"codeberg.org/monostack/gizmo/internal/testns"
)

// addVeth joins router and host with a veth pair, lan0 – eth0, and waits
// for both link-local addresses.
func addVeth(t *testing.T, router, host string) {
	t.Helper()
	testns.Veth(t, router, "lan0", host, "eth0")
	testns.Sysctl(t, router, "net.ipv6.conf.lan0.accept_dad=0")
	testns.Sysctl(t, host, "net.ipv6.conf.eth0.accept_dad=0")
	testns.IP(t, "-n", router, "link", "set", "lan0", "up")
	testns.IP(t, "-n", host, "link", "set", "eth0", "up")
	testns.WaitLinkLocal(t, router, "lan0")
	testns.WaitLinkLocal(t, host, "eth0")
}

// serveOnLink runs the server in a gzt-d6-* namespace on one end of a veth
// pair and returns the namespace of the other end, gzt-d6h-*, for a client.
func serveOnLink(t *testing.T) (s *Service, router, host string) {
	// Installs the lab's Debian packages when it can, else skips naming them.
	depstest.Require(t, deps.Lab)
	router, host = testns.New(t, "d6"), testns.New(t, "d6h")
	addVeth(t, router, host)

	s, err := New(Config{Interface: "lan0"})
	if err != nil {
		t.Fatal(err)
	}
	s.Update(testPlan)
	testns.Start(t, router, s.Run)
	return s, router, host
}

// TestDhclient runs ISC dhclient in stateless mode (-S: Information-request
// only) against the server and compares the configuration dhclient hands
// its script with the plan.
func TestDhclient(t *testing.T) {
	s, _, host := serveOnLink(t)
	got := informationRequest(t, host)
	want := []string{
		"new_dhcp6_domain_search=home.arpa.",
		"new_dhcp6_info_refresh_time=3600",
		"new_dhcp6_name_servers=fd12:3456:789a::35",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dhclient's configuration (-want +got):\n%s", diff)
	}
	if st := s.Stats(); st.Replies == 0 {
		t.Errorf("no Reply counted: %+v", st)
	}
}

// TestInterfaceReplaced removes the LAN interface under the running server
// and creates it again (a bridge rebuilt): the server must notice and
// answer on the new interface.
func TestInterfaceReplaced(t *testing.T) {
	_, router, host := serveOnLink(t)
	informationRequest(t, host)
	testns.IP(t, "-n", router, "link", "del", "lan0")
	addVeth(t, router, host)
	if got := informationRequest(t, host); len(got) == 0 {
		t.Error("no configuration from the server on the new interface")
	}
}

// informationRequest runs dhclient -S in host and returns the sorted new_*
// variables dhclient hands its script, without the DUIDs (from the veths'
// random MACs).
func informationRequest(t *testing.T, host string) []string {
	t.Helper()
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	script := filepath.Join(dir, "script")
	// dhclient-script(8) gets the configuration in new_* variables.
	if err := os.WriteFile(script, []byte("#!/bin/sh\nenv | grep -E '^(reason|new_dhcp6_)' | sort > "+envFile+".tmp && mv "+envFile+".tmp "+envFile+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	client := testns.Watch(t, testns.Command(host, "dhclient", "-S", "-d", "-1",
		"-lf", filepath.Join(dir, "leases"), "-pf", filepath.Join(dir, "pid"), "-sf", script, "eth0"))

	var env string
wait:
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if b, err := os.ReadFile(envFile); err == nil && strings.Contains(string(b), "new_dhcp6_") {
			env = string(b)
			break wait
		}
		select {
		case <-client.Exited():
			if b, rerr := os.ReadFile(envFile); rerr == nil && strings.Contains(string(b), "new_dhcp6_") {
				env = string(b)
				break wait
			}
			b, _ := os.ReadFile(envFile)
			t.Fatalf("dhclient exited (%v) without a Reply; its output:\n%s\nscript saw:\n%s", client.Err(), client.Output(), b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("dhclient never got a Reply; its output:\n%s", client.Output())
		}
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(env), "\n") {
		// dhclient's name for the event varies by version.
		if !strings.HasPrefix(line, "new_dhcp6_server_id=") && !strings.HasPrefix(line, "new_dhcp6_client_id=") && !strings.HasPrefix(line, "reason=") {
			got = append(got, line)
		}
	}
	sort.Strings(got)
	return got
}

// TestDhclientStateful runs dhclient asking for an address: a stateless
// server must answer its Solicit with an Advertise carrying NoAddrsAvail
// (RFC 8415 §18.3.1), which dhclient receives and declines ("Lease failed
// to satisfy": it holds no address).
func TestDhclientStateful(t *testing.T) {
	s, _, host := serveOnLink(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := testns.CommandContext(ctx, host, "dhclient", "-6", "-d", "-1", "-v",
		"-lf", filepath.Join(dir, "leases"), "-pf", filepath.Join(dir, "pid"), "-sf", "/bin/true", "eth0")
	out, err := client.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		client.Wait()
	}()
	var seen strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(seen.String(), "RCV: Advertise message") || !strings.Contains(seen.String(), "Lease failed to satisfy") {
		n, err := out.Read(buf)
		if err != nil {
			t.Fatalf("dhclient never declined an Advertise (%v):\n%s", err, seen.String())
		}
		seen.Write(buf[:n])
	}
	// The server counts an Advertise once its send returned, which can be
	// after the client has read and declined it.
	testns.WaitFor(t, "the Advertise counted", 30*time.Second, func() (bool, string) {
		st := s.Stats()
		return st.Advertises > 0, fmt.Sprintf("%+v", st)
	})
}

// TestGarbageIsCounted sends malformed DHCPv6 from the host: each message
// is counted as dropped, and the server still answers a real client after.
func TestGarbageIsCounted(t *testing.T) {
	s, _, host := serveOnLink(t)
	garbage := [][]byte{
		{byte(dhcpv6.MessageTypeInformationRequest), 1, 2, 3, 0, 1, 0, 200, 1}, // option longer than the message
		{byte(dhcpv6.MessageTypeInformationRequest)},                           // header cut short
		{byte(dhcpv6.MessageTypeRelayForward), 0, 0, 0},
	}
	// send the garbage from the host; a batch, or part of one, can be
	// lost while the host's link-local address is still tentative, so it
	// is sent again until the server has counted every kind. Every
	// datagram it received must have been dropped, none answered.
	send := func() error {
		return testns.Do(host, func() error {
			c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6unspecified})
			if err != nil {
				return err
			}
			defer c.Close()
			dst := &net.UDPAddr{IP: dhcpv6.AllDHCPRelayAgentsAndServers, Port: dhcpv6.DefaultServerPort, Zone: "eth0"}
			for _, b := range garbage {
				if _, err := c.WriteToUDP(b, dst); err != nil {
					return err
				}
			}
			return nil
		})
	}
	var resend time.Time
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		st := s.Stats()
		if st.Replies != 0 || st.Advertises != 0 {
			t.Fatalf("garbage answered: %+v", st)
		}
		if st.Dropped[ReasonMalformed] >= 2 && st.Dropped[ReasonRelay] >= 1 && st.DroppedTotal == st.Received {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("garbage not counted: %+v", st)
		}
		if time.Now().After(resend) {
			if err := send(); err != nil {
				t.Fatal(err)
			}
			resend = time.Now().Add(time.Second)
		}
	}
	if got := informationRequest(t, host); len(got) == 0 {
		t.Error("no configuration from the server after the garbage")
	}
}
