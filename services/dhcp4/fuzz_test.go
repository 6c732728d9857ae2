package dhcp4

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// seedPackets are well-formed client messages of every kind, the starting
// points the fuzzer mutates.
func seedPackets(t testing.TB) [][]byte {
	ip := "203.0.113.140"
	var out [][]byte
	for _, m := range []*dhcpv4.DHCPv4{
		msg(t, dhcpv4.MessageTypeDiscover, macA, withPRL(1, 3, 6, 15, 108), withHostname("laptop")),
		msg(t, dhcpv4.MessageTypeDiscover, macB, withGiaddr("203.0.113.130")),
		msg(t, dhcpv4.MessageTypeRequest, macA, withServerID(serverA.String()), withRequested(ip)),
		msg(t, dhcpv4.MessageTypeRequest, macA, withRequested(ip), withPRL(108)),
		msg(t, dhcpv4.MessageTypeRequest, macA, withCiaddr(ip)),
		msg(t, dhcpv4.MessageTypeDecline, macA, withServerID(serverA.String()), withRequested(ip)),
		msg(t, dhcpv4.MessageTypeRelease, macA, withServerID(serverA.String()), withCiaddr(ip)),
		msg(t, dhcpv4.MessageTypeInform, macA, withCiaddr(ip)),
	} {
		out = append(out, m.ToBytes())
	}
	return out
}

// FuzzHandle drives every path from packet bytes to a reply and a lease
// table change: the parser, the engine and the reply encoder. A packet may
// be dropped, but nothing may panic, and the table must stay consistent.
func FuzzHandle(f *testing.F) {
	for _, b := range seedPackets(f) {
		f.Add(b, b)
	}
	f.Fuzz(func(t *testing.T, first, second []byte) {
		p := labPlan()
		p.Hosts = map[string]HostPolicy{macB: {V6OnlyPreferred: false, Reserved: serverA.Next()}}
		e := newTestEngine(t, p)
		// Two packets, so that state left by the first meets the second.
		for i, b := range [][]byte{first, second} {
			req, err := dhcpv4.FromBytes(b)
			if err != nil {
				continue
			}
			out := e.handle(req, t0.Add(time.Duration(i)*time.Second))
			_, batch := e.takeBatch()
			if out.reply != nil {
				batch = append(batch, out)
			}
			for _, o := range batch {
				wire := o.reply.ToBytes()
				if _, err := dhcpv4.FromBytes(wire); err != nil {
					t.Fatalf("reply does not parse: %v", err)
				}
				if destination(o.reply) == nil {
					t.Fatal("no destination")
				}
				if y := addr4(o.reply.YourIPAddr); y.IsValid() && (y == serverA || !p.Subnet().Contains(y)) {
					t.Fatalf("offered %s", y)
				}
			}
		}
		seen := map[string]bool{}
		for ip, b := range e.t.byIP {
			if b.IP != ip || e.t.byMAC[b.MAC] != b {
				t.Fatalf("index out of sync for %s / %s", ip, b.MAC)
			}
			if seen[b.MAC] {
				t.Fatalf("%s holds two addresses", b.MAC)
			}
			seen[b.MAC] = true
		}
	})
}

// FuzzLoadLeases: whatever is in the lease files, the server starts, and
// what it loaded is consistent.
func FuzzLoadLeases(f *testing.F) {
	snap := `{"version":1,"seq":2,"leases":[{"mac":"02:00:00:00:00:0a","ip":"203.0.113.140","hostname":"x","expires":"2026-11-26T07:00:00Z"}]}`
	f.Add([]byte(snap), []byte(`{"seq":3,"mac":"02:00:00:00:00:0b","ip":"203.0.113.141","expires":"2026-11-26T07:00:00Z"}`+"\n"+`{"seq":4,"mac":"02:00:00:00:00:0a","deleted":true}`+"\n"))
	f.Add([]byte(`{"version":1,"leases":[{"mac":"zz","ip":"2001:db8::1","expires":"2026-11-26T07:00:00Z"},{"mac":"02:00:00:00:00:0a","ip":"203.0.113.140","expires":"2026-11-26T07:00:00Z"},{"mac":"02:00:00:00:00:0b","ip":"203.0.113.140","expires":"2026-11-26T08:00:00Z"}]}`), []byte("{\"seq\":1,\"mac\":\"02:00"))
	f.Add([]byte(`{"version":2}`), []byte{})
	f.Add([]byte("\x00garbage"), []byte("\n\n"))
	f.Fuzz(func(t *testing.T, snapshot, journal []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, LeaseFile), snapshot, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, JournalFile), journal, 0o644); err != nil {
			t.Fatal(err)
		}
		_, recs := openStore(dir, quietLog())
		e := newEngine(quietLog())
		e.restore(recs)
		e.setPlan(labPlan())
		for ip, b := range e.t.byIP {
			if b.IP != ip || e.t.byMAC[b.MAC] != b {
				t.Fatalf("index out of sync for %s", ip)
			}
		}
		lease(t, e, "02:00:00:00:00:99", t0)
	})
}

// FuzzClientHostname: the name a client announces ends up in DNS, so it is
// either a clean label or nothing.
func FuzzClientHostname(f *testing.F) {
	f.Add([]byte("\x04\x00\x00\x06laptop\x04home\x04arpa\x00"), []byte("Laptop"))
	f.Add([]byte("\x00\x00\x00laptop.home.arpa"), []byte(""))
	f.Fuzz(func(t *testing.T, fqdn, host []byte) {
		h := clientHostname(dhcpv4.Options{81: fqdn, 12: host})
		if h != "" && sanitizeLabel(h) != h {
			t.Fatalf("%q is not a clean label", h)
		}
		if len(h) > 63 {
			t.Fatalf("%q too long", h)
		}
	})
}

func TestDestinationIPv4Only(t *testing.T) {
	// net.IP fields from the parser are 4 bytes; the ones we build must be
	// too, or ToBytes would panic.
	e := newTestEngine(t, labPlan())
	out := handleNow(e, msg(t, dhcpv4.MessageTypeDiscover, macA), t0)
	if len(out.reply.YourIPAddr) != net.IPv4len {
		t.Errorf("yiaddr is %d bytes", len(out.reply.YourIPAddr))
	}
}
