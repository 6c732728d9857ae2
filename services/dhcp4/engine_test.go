package dhcp4

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

var (
	t0      = time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	macA    = "02:00:00:00:00:0a"
	macB    = "02:00:00:00:00:0b"
	serverA = netip.MustParseAddr("203.0.113.129")
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// labPlan is the lab's legacy network (lab/README.md): 203.0.113.129/25.
func labPlan() Plan {
	return Plan{
		Server:                 netip.MustParsePrefix("203.0.113.129/25"),
		PoolStart:              netip.MustParseAddr("203.0.113.129"),
		PoolEnd:                netip.MustParseAddr("203.0.113.254"),
		Router:                 serverA,
		DNS:                    []netip.Addr{serverA},
		NTP:                    []netip.Addr{serverA},
		Domain:                 "home.arpa",
		LeaseTime:              time.Hour,
		DefaultV6OnlyPreferred: true,
	}
}

func newTestEngine(t *testing.T, p Plan) *engine {
	t.Helper()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	e := newEngine(quietLog())
	e.setPlan(p)
	return e
}

type reqOpt func(*dhcpv4.DHCPv4)

func withPRL(codes ...uint8) reqOpt {
	return func(d *dhcpv4.DHCPv4) {
		var cs []dhcpv4.OptionCode
		for _, c := range codes {
			cs = append(cs, dhcpv4.GenericOptionCode(c))
		}
		d.UpdateOption(dhcpv4.OptParameterRequestList(cs...))
	}
}
func withRequested(ip string) reqOpt {
	return func(d *dhcpv4.DHCPv4) {
		d.UpdateOption(dhcpv4.OptRequestedIPAddress(net.ParseIP(ip).To4()))
	}
}
func withServerID(ip string) reqOpt {
	return func(d *dhcpv4.DHCPv4) { d.UpdateOption(dhcpv4.OptServerIdentifier(net.ParseIP(ip).To4())) }
}
func withCiaddr(ip string) reqOpt {
	return func(d *dhcpv4.DHCPv4) { d.ClientIPAddr = net.ParseIP(ip).To4() }
}
func withGiaddr(ip string) reqOpt {
	return func(d *dhcpv4.DHCPv4) { d.GatewayIPAddr = net.ParseIP(ip).To4() }
}
func withHostname(h string) reqOpt {
	return func(d *dhcpv4.DHCPv4) { d.UpdateOption(dhcpv4.OptHostName(h)) }
}

// msg builds a client message and round-trips it through the wire format,
// so that the engine sees exactly what it would see from a socket.
func msg(t testing.TB, typ dhcpv4.MessageType, mac string, opts ...reqOpt) *dhcpv4.DHCPv4 {
	t.Helper()
	hw, err := net.ParseMAC(mac)
	if err != nil {
		t.Fatal(err)
	}
	d := &dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeBootRequest,
		HWType:        1,
		ClientHWAddr:  hw,
		TransactionID: dhcpv4.TransactionID{1, 2, 3, 4},
		Options:       dhcpv4.Options{},
	}
	d.UpdateOption(dhcpv4.OptMessageType(typ))
	for _, o := range opts {
		o(d)
	}
	p, err := dhcpv4.FromBytes(d.ToBytes())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// handleNow handles m and, for durable replies, completes the group commit
// as the service would, returning the reply either way.
func handleNow(e *engine, m *dhcpv4.DHCPv4, now time.Time) outcome {
	out := e.handle(m, now)
	if out.reply == nil {
		// Take the queued reply as the committer would, but leave the
		// table dirty so that a test can still flush it to disk.
		e.mu.Lock()
		batch := e.pending
		e.pending = nil
		e.mu.Unlock()
		if len(batch) == 1 {
			return batch[0]
		}
	}
	return out
}

func typeOf(o outcome) dhcpv4.MessageType {
	if o.reply == nil {
		return dhcpv4.MessageTypeNone
	}
	return o.reply.MessageType()
}

// wantNAK checks that the server answered with a DHCPNAK (RFC 2131 §4.3.2).
func wantNAK(t *testing.T, o outcome) {
	t.Helper()
	if typeOf(o) != dhcpv4.MessageTypeNak {
		t.Errorf("got %v, want NAK", typeOf(o))
	}
}

func yiaddr(o outcome) netip.Addr {
	return addr4(o.reply.YourIPAddr)
}

// lease runs DISCOVER, REQUEST for mac and returns the address.
func lease(t *testing.T, e *engine, mac string, now time.Time) netip.Addr {
	t.Helper()
	off := handleNow(e, msg(t, dhcpv4.MessageTypeDiscover, mac), now)
	if typeOf(off) != dhcpv4.MessageTypeOffer {
		t.Fatalf("%s: DISCOVER got %v, want OFFER", mac, typeOf(off))
	}
	ip := yiaddr(off)
	ack := handleNow(e, msg(t, dhcpv4.MessageTypeRequest, mac, withServerID(e.plan.Server.Addr().String()), withRequested(ip.String())), now)
	if typeOf(ack) != dhcpv4.MessageTypeAck || yiaddr(ack) != ip {
		t.Fatalf("%s: REQUEST %s got %v %v, want ACK", mac, ip, typeOf(ack), yiaddr(ack))
	}
	return ip
}

func TestOfferCarriesConfiguration(t *testing.T) {
	e := newTestEngine(t, labPlan())
	off := handleNow(e, msg(t, dhcpv4.MessageTypeDiscover, macA), t0)
	if typeOf(off) != dhcpv4.MessageTypeOffer {
		t.Fatalf("got %v, want OFFER", typeOf(off))
	}
	r := off.reply
	ip := yiaddr(off)
	if ip == serverA || !labPlan().Subnet().Contains(ip) {
		t.Errorf("offered %s: must be in the subnet and not the gizmo's own address", ip)
	}
	for _, c := range []struct {
		name string
		got  string
		want string
	}{
		{"server identifier (option 54)", r.ServerIdentifier().String(), "203.0.113.129"},
		{"subnet mask (option 1)", net.IP(r.SubnetMask()).String(), "255.255.255.128"},
		{"router (option 3)", r.Router()[0].String(), "203.0.113.129"},
		{"DNS (option 6)", r.DNS()[0].String(), "203.0.113.129"},
		{"domain (option 15)", r.DomainName(), "home.arpa"},
		{"RFC 2132 8.3: NTP server (option 42)", fmt.Sprint(r.NTPServers()), "[203.0.113.129]"},
		{"broadcast (option 28)", r.BroadcastAddress().String(), "203.0.113.255"},
		{"lease time (option 51)", r.IPAddressLeaseTime(0).String(), "1h0m0s"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %s, want %s", c.name, c.got, c.want)
		}
	}
	if r.Options.Has(dhcpv4.OptionIPv6OnlyPreferred) {
		t.Error("option 108 sent to a client that did not ask for it")
	}
	if r.TransactionID != (dhcpv4.TransactionID{1, 2, 3, 4}) {
		t.Errorf("xid %v not echoed", r.TransactionID)
	}
}

func TestOption108(t *testing.T) {
	for _, tc := range []struct {
		name       string
		policy     map[string]HostPolicy
		defaultOn  bool
		prl        []uint8
		want108    bool
		wantYiaddr bool
	}{
		{"RFC 8925 3.3: requested and allowed by default: 108, no address", nil, true, []uint8{1, 3, 108}, true, false},
		{"RFC 8925 3.3: not in the PRL: MUST NOT send", nil, true, []uint8{1, 3}, false, true},
		{"policy off for this host: lease, no 108", map[string]HostPolicy{macA: {V6OnlyPreferred: false}}, true, []uint8{108}, false, true},
		{"policy on for this host, default off", map[string]HostPolicy{macA: {V6OnlyPreferred: true}}, false, []uint8{108}, true, false},
		{"default off, unknown host", nil, false, []uint8{108}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := labPlan()
			p.Hosts, p.DefaultV6OnlyPreferred = tc.policy, tc.defaultOn
			e := newTestEngine(t, p)
			out := handleNow(e, msg(t, dhcpv4.MessageTypeDiscover, macA, withPRL(tc.prl...)), t0)
			if typeOf(out) != dhcpv4.MessageTypeOffer {
				t.Fatalf("got %v, want OFFER", typeOf(out))
			}
			wait, got108 := out.reply.IPv6OnlyPreferred()
			if got108 != tc.want108 {
				t.Fatalf("option 108 present = %v, want %v", got108, tc.want108)
			}
			if got108 && wait != DefaultV6OnlyWait {
				t.Errorf("V6ONLY_WAIT = %v, want %v", wait, DefaultV6OnlyWait)
			}
			if got := yiaddr(out).IsValid(); got != tc.wantYiaddr {
				t.Errorf("yiaddr %v, want an address: %v", out.reply.YourIPAddr, tc.wantYiaddr)
			}
			if tc.want108 {
				if out.lease == nil || !out.lease.V6OnlyPreferred || out.lease.IP.IsValid() {
					t.Errorf("event %+v, want a v6-only report without address", out.lease)
				}
				if n := len(e.t.byMAC); n != 0 {
					t.Errorf("%d bindings after a 108 offer, want none (no lease allocated)", n)
				}
				if e.c.v6only.Load() != 1 {
					t.Errorf("v6only counter %d", e.c.v6only.Load())
				}
			}
		})
	}
}

func TestV6OnlyWaitNeverBelowMinimum(t *testing.T) {
	p := labPlan()
	p.V6OnlyWait = 10 * time.Second
	e := newTestEngine(t, p)
	out := handleNow(e, msg(t, dhcpv4.MessageTypeDiscover, macA, withPRL(108)), t0)
	if wait, _ := out.reply.IPv6OnlyPreferred(); wait != MinV6OnlyWait {
		t.Errorf("V6ONLY_WAIT %v, want MIN_V6ONLY_WAIT %v", wait, MinV6OnlyWait)
	}
}

func TestPolicyTurnedOnEndsLease(t *testing.T) {
	p := labPlan()
	p.Hosts = map[string]HostPolicy{macA: {V6OnlyPreferred: false}}
	e := newTestEngine(t, p)
	ip := lease(t, e, macA, t0)
	p.Hosts = nil
	e.setPlan(p)
	out := handleNow(e, msg(t, dhcpv4.MessageTypeDiscover, macA, withPRL(108)), t0.Add(time.Minute))
	if _, ok := out.reply.IPv6OnlyPreferred(); !ok {
		t.Fatal("no 108 after the policy was turned on")
	}
	if out.ended == nil || out.ended.IP != ip {
		t.Errorf("ended %+v, want the old lease on %s", out.ended, ip)
	}
	// RFC 8925 §3.2 INIT-REBOOT with the old address: NAK, so that the
	// client rediscovers and gets 108.
	out = handleNow(e, msg(t, dhcpv4.MessageTypeRequest, macA, withPRL(108), withRequested(ip.String())), t0.Add(time.Minute))
	if typeOf(out) != dhcpv4.MessageTypeNak {
		t.Errorf("INIT-REBOOT of a v6-only host got %v, want NAK", typeOf(out))
	}
}

func TestRFC2131(t *testing.T) {
	t.Run("4.3.1: duplicate DISCOVERs get the same offer", func(t *testing.T) {
		e := newTestEngine(t, labPlan())
		a := yiaddr(handleNow(e, msg(t, dhcpv4.MessageTypeDiscover, macA), t0))
		for i := range 5 {
			b := yiaddr(handleNow(e, msg(t, dhcpv4.MessageTypeDiscover, macA), t0.Add(time.Duration(i)*time.Second)))
			if a != b {
				t.Fatalf("offer %d: %s, first was %s", i, b, a)
			}
		}
		if c := yiaddr(handleNow(e, msg(t, dhcpv4.MessageTypeDiscover, macB), t0)); c == a {
			t.Errorf("second client offered the held address %s", a)
		}
	})
	t.Run("4.3.1: a returning client gets its previous address", func(t *testing.T) {
		e := newTestEngine(t, labPlan())
		ip := lease(t, e, macA, t0)
		if got := lease(t, e, macA, t0.Add(48*time.Hour)); got != ip {
			t.Errorf("got %s, want previous %s", got, ip)
		}
	})
	t.Run("4.3.1: requested address honoured when free", func(t *testing.T) {
		e := newTestEngine(t, labPlan())
		out := handleNow(e, msg(t, dhcpv4.MessageTypeDiscover, macA, withRequested("203.0.113.200")), t0)
		if yiaddr(out).String() != "203.0.113.200" {
			t.Errorf("got %s", yiaddr(out))
		}
	})
	t.Run("4.3.2 SELECTING: another server chosen: silent, offer freed", func(t *testing.T) {
		e := newTestEngine(t, labPlan())
		ip := yiaddr(handleNow(e, msg(t, dhcpv4.MessageTypeDiscover, macA), t0))
		out := handleNow(e, msg(t, dhcpv4.MessageTypeRequest, macA, withServerID("203.0.113.1"), withRequested(ip.String())), t0)
		if out.reply != nil {
			t.Fatalf("replied %v to a REQUEST for another server", typeOf(out))
		}
		if got := yiaddr(handleNow(e, msg(t, dhcpv4.MessageTypeDiscover, macB, withRequested(ip.String())), t0)); got != ip {
			t.Errorf("freed offer %s not given to the next client asking for it, got %s", ip, got)
		}
	})
	t.Run("4.3.2 SELECTING: address held for another client: NAK", func(t *testing.T) {
		e := newTestEngine(t, labPlan())
		ip := lease(t, e, macA, t0)
		out := handleNow(e, msg(t, dhcpv4.MessageTypeRequest, macB, withServerID(serverA.String()), withRequested(ip.String())), t0)
		wantNAK(t, out)
	})
	t.Run("4.3.2 INIT-REBOOT: wrong subnet: NAK", func(t *testing.T) {
		e := newTestEngine(t, labPlan())
		out := handleNow(e, msg(t, dhcpv4.MessageTypeRequest, macA, withRequested("192.0.2.77")), t0)
		if typeOf(out) != dhcpv4.MessageTypeNak {
			t.Fatalf("got %v, want NAK", typeOf(out))
		}
		if d := destination(out.reply); !d.IP.Equal(net.IPv4bcast) {
			t.Errorf("NAK to %v, want broadcast", d)
		}
	})
	t.Run("4.3.2 INIT-REBOOT: client remembers another address than ours: NAK", func(t *testing.T) {
		e := newTestEngine(t, labPlan())
		ip := lease(t, e, macA, t0)
		other := addrFrom(u32(ip) + 1)
		out := handleNow(e, msg(t, dhcpv4.MessageTypeRequest, macA, withRequested(other.String())), t0)
		wantNAK(t, out)
	})
	t.Run("4.3.2 INIT-REBOOT: known client: ACK", func(t *testing.T) {
		e := newTestEngine(t, labPlan())
		ip := lease(t, e, macA, t0)
		out := handleNow(e, msg(t, dhcpv4.MessageTypeRequest, macA, withRequested(ip.String())), t0.Add(time.Minute))
		if typeOf(out) != dhcpv4.MessageTypeAck || yiaddr(out) != ip {
			t.Errorf("got %v %s, want ACK %s", typeOf(out), yiaddr(out), ip)
		}
	})
	t.Run("4.3.2 RENEWING: ACK unicast to ciaddr, lease extended", func(t *testing.T) {
		e := newTestEngine(t, labPlan())
		ip := lease(t, e, macA, t0)
		later := t0.Add(30 * time.Minute)
		out := handleNow(e, msg(t, dhcpv4.MessageTypeRequest, macA, withCiaddr(ip.String())), later)
		if typeOf(out) != dhcpv4.MessageTypeAck {
			t.Fatalf("got %v, want ACK", typeOf(out))
		}
		if d := destination(out.reply); d.IP.String() != ip.String() || d.Port != 68 {
			t.Errorf("ACK to %v, want %s:68", d, ip)
		}
		if !out.lease.Expires.Equal(later.Add(time.Hour)) {
			t.Errorf("expires %v, want %v", out.lease.Expires, later.Add(time.Hour))
		}
	})
	t.Run("4.3.2 REBINDING: address belongs to another client: NAK", func(t *testing.T) {
		e := newTestEngine(t, labPlan())
		ip := lease(t, e, macA, t0)
		out := handleNow(e, msg(t, dhcpv4.MessageTypeRequest, macB, withCiaddr(ip.String())), t0)
		wantNAK(t, out)
	})
	t.Run("4.3.2 RENEWING: address outside the subnet: NAK", func(t *testing.T) {
		e := newTestEngine(t, labPlan())
		out := handleNow(e, msg(t, dhcpv4.MessageTypeRequest, macA, withCiaddr("198.51.100.7")), t0)
		wantNAK(t, out)
	})
	t.Run("4.3.3 DECLINE: address out of the pool for a while", func(t *testing.T) {
		e := newTestEngine(t, labPlan())
		ip := lease(t, e, macA, t0)
		out := handleNow(e, msg(t, dhcpv4.MessageTypeDecline, macA, withServerID(serverA.String()), withRequested(ip.String())), t0)
		if out.reply != nil || out.ended == nil {
			t.Fatalf("DECLINE: reply %v, ended %v; want no reply and an ended lease", typeOf(out), out.ended)
		}
		for _, m := range []string{macA, macB} {
			if got := yiaddr(handleNow(e, msg(t, dhcpv4.MessageTypeDiscover, m, withRequested(ip.String())), t0.Add(time.Minute))); got == ip {
				t.Errorf("%s offered declined %s", m, ip)
			}
		}
		if e.c.declines.Load() != 1 {
			t.Errorf("declines = %d", e.c.declines.Load())
		}
	})
	t.Run("4.3.4 RELEASE: lease ends, same address next time", func(t *testing.T) {
		e := newTestEngine(t, labPlan())
		ip := lease(t, e, macA, t0)
		out := handleNow(e, msg(t, dhcpv4.MessageTypeRelease, macA, withServerID(serverA.String()), withCiaddr(ip.String())), t0)
		if out.reply != nil || out.ended == nil || out.ended.IP != ip {
			t.Fatalf("RELEASE: reply %v, ended %+v", typeOf(out), out.ended)
		}
		if n := len(e.leases(t0.Add(time.Second))); n != 0 {
			t.Errorf("%d leases after RELEASE", n)
		}
		if got := lease(t, e, macA, t0.Add(time.Minute)); got != ip {
			t.Errorf("after release got %s, want %s", got, ip)
		}
	})
	t.Run("4.3.5 INFORM: ACK with configuration, no address, no lease time", func(t *testing.T) {
		e := newTestEngine(t, labPlan())
		out := handleNow(e, msg(t, dhcpv4.MessageTypeInform, macA, withCiaddr("203.0.113.140")), t0)
		if typeOf(out) != dhcpv4.MessageTypeAck {
			t.Fatalf("got %v, want ACK", typeOf(out))
		}
		if yiaddr(out).IsValid() || out.reply.Options.Has(dhcpv4.OptionIPAddressLeaseTime) || out.reply.DomainName() != "home.arpa" {
			t.Errorf("INFORM reply: yiaddr %v, options %v", out.reply.YourIPAddr, out.reply.Options)
		}
		if n := len(e.t.byMAC); n != 0 {
			t.Errorf("INFORM created %d bindings", n)
		}
		if d := destination(out.reply); d.IP.String() != "203.0.113.140" {
			t.Errorf("sent to %v, want ciaddr", d)
		}
	})
	t.Run("4.1: relay on our subnet gets the reply on port 67", func(t *testing.T) {
		e := newTestEngine(t, labPlan())
		out := handleNow(e, msg(t, dhcpv4.MessageTypeDiscover, macA, withGiaddr("203.0.113.130")), t0)
		if d := destination(out.reply); d.IP.String() != "203.0.113.130" || d.Port != 67 {
			t.Errorf("sent to %v", d)
		}
	})
	t.Run("4.1: relay for a foreign network is ignored", func(t *testing.T) {
		e := newTestEngine(t, labPlan())
		if out := handleNow(e, msg(t, dhcpv4.MessageTypeDiscover, macA, withGiaddr("192.0.2.1")), t0); out.reply != nil {
			t.Errorf("answered a foreign relay: %v", typeOf(out))
		}
	})
}

func TestPoolExhausted(t *testing.T) {
	p := labPlan()
	// A /29: .129 is the gizmo, .128 and .135 network and broadcast.
	p.Server = netip.MustParsePrefix("203.0.113.129/29")
	p.PoolStart, p.PoolEnd = netip.MustParseAddr("203.0.113.128"), netip.MustParseAddr("203.0.113.135")
	e := newTestEngine(t, p)
	seen := map[netip.Addr]bool{}
	for i := range 5 {
		ip := lease(t, e, net.HardwareAddr{2, 0, 0, 0, 1, byte(i)}.String(), t0)
		if seen[ip] || ip == serverA {
			t.Fatalf("address %s leased twice or is the server's", ip)
		}
		seen[ip] = true
	}
	out := handleNow(e, msg(t, dhcpv4.MessageTypeDiscover, "02:00:00:00:02:00"), t0)
	if out.reply != nil {
		t.Fatalf("offered %s from an exhausted pool", yiaddr(out))
	}
	if e.c.exhausted.Load() != 1 {
		t.Errorf("exhausted counter = %d, want 1", e.c.exhausted.Load())
	}
	// Once a lease expires, its address goes to the next client.
	out = handleNow(e, msg(t, dhcpv4.MessageTypeDiscover, "02:00:00:00:02:00"), t0.Add(2*time.Hour))
	if typeOf(out) != dhcpv4.MessageTypeOffer {
		t.Errorf("no offer after leases expired: %v", typeOf(out))
	}
}

func TestReservation(t *testing.T) {
	p := labPlan()
	res := netip.MustParseAddr("203.0.113.200")
	p.Hosts = map[string]HostPolicy{macB: {Reserved: res}}
	e := newTestEngine(t, p)
	out := handleNow(e, msg(t, dhcpv4.MessageTypeDiscover, macA, withRequested(res.String())), t0)
	if yiaddr(out) == res {
		t.Fatalf("reserved %s offered to another host", res)
	}
	if got := lease(t, e, macB, t0); got != res {
		t.Errorf("reserved host got %s, want %s", got, res)
	}

	// A reservation added while the host holds another lease: its next
	// renewal is NAKed, and its next DISCOVER offers the reservation.
	ip := lease(t, e, macA, t0)
	p.Hosts[macA] = HostPolicy{Reserved: netip.MustParseAddr("203.0.113.201")}
	e.setPlan(p)
	out = handleNow(e, msg(t, dhcpv4.MessageTypeRequest, macA, withCiaddr(ip.String())), t0.Add(time.Minute))
	if typeOf(out) != dhcpv4.MessageTypeNak {
		t.Errorf("renewal of %s despite the new reservation: %v", ip, typeOf(out))
	}
	if got := lease(t, e, macA, t0.Add(time.Minute)); got.String() != "203.0.113.201" {
		t.Errorf("after the NAK got %s, want the reservation", got)
	}
}

func TestPlanChangeDropsForeignLeases(t *testing.T) {
	e := newTestEngine(t, labPlan())
	lease(t, e, macA, t0)
	p := labPlan()
	p.Server = netip.MustParsePrefix("198.51.100.1/24")
	p.PoolStart, p.PoolEnd = netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("198.51.100.254")
	p.Router, p.DNS = p.Server.Addr(), nil
	dropped := e.setPlan(p)
	if len(dropped) != 1 || dropped[0].MAC != macA {
		t.Errorf("dropped %v, want macA's lease", dropped)
	}
	if ip := lease(t, e, macA, t0); !p.Subnet().Contains(ip) {
		t.Errorf("got %s outside the new subnet", ip)
	}
}

func TestMalformedCounted(t *testing.T) {
	e := newTestEngine(t, labPlan())
	reply := msg(t, dhcpv4.MessageTypeDiscover, macA)
	reply.OpCode = dhcpv4.OpcodeBootReply
	noType := msg(t, dhcpv4.MessageTypeDiscover, macA)
	noType.Options.Del(dhcpv4.OptionDHCPMessageType)
	longHW := msg(t, dhcpv4.MessageTypeDiscover, macA)
	longHW.ClientHWAddr = make(net.HardwareAddr, 16)
	for _, m := range []*dhcpv4.DHCPv4{reply, noType, longHW} {
		if out := handleNow(e, m, t0); out.reply != nil {
			t.Errorf("answered %v", m.Summary())
		}
	}
	if got := e.c.malformed.Load(); got != 3 {
		t.Errorf("malformed = %d, want 3", got)
	}
}

func TestPlanValidate(t *testing.T) {
	good := labPlan()
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Plan{}).Validate(); err != nil {
		t.Errorf("disabled plan: %v", err)
	}
	for name, mut := range map[string]func(*Plan){
		"pool outside subnet":    func(p *Plan) { p.PoolEnd = netip.MustParseAddr("203.0.114.1") },
		"pool reversed":          func(p *Plan) { p.PoolStart, p.PoolEnd = p.PoolEnd, p.PoolStart },
		"IPv6 server":            func(p *Plan) { p.Server = netip.MustParsePrefix("2001:db8::1/64") },
		"IPv6 DNS":               func(p *Plan) { p.DNS = []netip.Addr{netip.MustParseAddr("2001:db8::53")} },
		"IPv6 NTP":               func(p *Plan) { p.NTP = []netip.Addr{netip.MustParseAddr("2001:db8::123")} },
		"reservation elsewhere":  func(p *Plan) { p.Hosts = map[string]HostPolicy{macA: {Reserved: netip.MustParseAddr("192.0.2.5")}} },
		"/31 has no room for us": func(p *Plan) { p.Server = netip.MustParsePrefix("203.0.113.129/31") },
	} {
		p := labPlan()
		mut(&p)
		if p.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestClientHostname(t *testing.T) {
	fqdn := func(flags byte, name []byte) dhcpv4.Options {
		return dhcpv4.Options{dhcpv4.OptionFQDN.Code(): append([]byte{flags, 0, 0}, name...)}
	}
	for _, tc := range []struct {
		name string
		opts dhcpv4.Options
		want string
	}{
		{"RFC 2132 3.14 host name", dhcpv4.Options{12: []byte("Printer")}, "printer"},
		{"host name with domain keeps the first label", dhcpv4.Options{12: []byte("tv.example.test")}, "tv"},
		{"spaces become hyphens", dhcpv4.Options{12: []byte("Living Room TV")}, "living-room-tv"},
		{"invalid characters: no name", dhcpv4.Options{12: []byte("a/b")}, ""},
		{"leading hyphen: no name", dhcpv4.Options{12: []byte("-x")}, ""},
		{"too long: no name", dhcpv4.Options{12: make([]byte, 64)}, ""},
		{"RFC 4702 2.3.1 wire format", fqdn(0x04, []byte("\x06laptop\x04home\x04arpa\x00")), "laptop"},
		{"RFC 4702 ASCII (deprecated)", fqdn(0x00, []byte("laptop.home.arpa")), "laptop"},
		{"RFC 4702 truncated label", fqdn(0x04, []byte("\x10abc")), ""},
		{"option 81 wins over 12", dhcpv4.Options{12: []byte("old"), 81: append([]byte{0x04, 0, 0}, "\x03new\x00"...)}, "new"},
		{"broken 81 falls back to 12", dhcpv4.Options{12: []byte("old"), 81: []byte{0x04}}, "old"},
	} {
		if got := clientHostname(tc.opts); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestHostnameReported(t *testing.T) {
	e := newTestEngine(t, labPlan())
	handleNow(e, msg(t, dhcpv4.MessageTypeDiscover, macA, withHostname("Gameconsole")), t0)
	ip := e.t.byMAC[macA].IP
	out := handleNow(e, msg(t, dhcpv4.MessageTypeRequest, macA, withServerID(serverA.String()), withRequested(ip.String())), t0)
	if out.lease == nil || out.lease.Hostname != "gameconsole" || out.lease.IP != ip || out.lease.V6OnlyPreferred {
		t.Errorf("lease event %+v", out.lease)
	}
}
