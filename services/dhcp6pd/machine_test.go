package dhcp6pd

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// signReconfigure fills in the digest of a Reconfigure message built with a
// zeroed HMAC-MD5 authentication option; the inverse of verifyReconfigure,
// used by tests to play the server.
func signReconfigure(raw, key []byte) error {
	a, err := findAuth(raw)
	if err != nil {
		return err
	}
	if len(a.Info) != 1+md5.Size {
		return errors.New("authentication information has no room for a digest")
	}
	clear(raw[a.infoOffset+1 : a.infoOffset+1+md5.Size])
	mac := hmac.New(md5.New, key)
	mac.Write(raw)
	copy(raw[a.infoOffset+1:], mac.Sum(nil))
	return nil
}

// authOptionBytes builds an OPTION_AUTH for reconfigure key authentication
// with the given auth info type and value.
func authOptionBytes(replay uint64, infoType byte, value []byte) dhcpv6.Option {
	b := make([]byte, authFixedLen+1+len(value))
	b[0], b[1], b[2] = authProtoReconfigureKey, authAlgHMACMD5, authRDMMonotonic
	binary.BigEndian.PutUint64(b[3:], replay)
	b[authFixedLen] = infoType
	copy(b[authFixedLen+1:], value)
	return &dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionAuth, OptionData: b}
}

// harness drives a machine with a fake clock and plays the server.
type harness struct {
	t      *testing.T
	m      *machine
	now    time.Time
	sent   []*dhcpv6.Message
	leases []Lease
	lost   []netip.Prefix
	stored *Lease
}

var testClientDUID = &dhcpv6.DUIDLLT{HWType: iana.HWTypeEthernet, Time: 1, LinkLayerAddr: net.HardwareAddr{2, 0, 0, 0, 0, 1}}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, now: testT0}
	h.m = &machine{
		log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		duid:    testClientDUID,
		iaid:    testIAID,
		hintLen: 56,
		send: func(b []byte) error {
			msg, err := dhcpv6.MessageFromBytes(b)
			if err != nil {
				t.Fatalf("client sent unparsable message: %v", err)
			}
			h.sent = append(h.sent, msg)
			return nil
		},
		rand:    constRand(0),
		stats:   &counters{},
		onLease: func(l Lease) { h.leases = append(h.leases, l) },
		onLost:  func(p netip.Prefix) { h.lost = append(h.lost, p) },
		store:   func(l *Lease) { h.stored = l },
	}
	return h
}

// advance moves the clock to the machine's next wake-up and ticks.
func (h *harness) advance() {
	h.t.Helper()
	w := h.m.wake()
	if w.Equal(farFuture) {
		h.t.Fatal("machine never wakes up")
	}
	if w.After(h.now) {
		h.now = w
	}
	h.m.tick(h.now)
}

// last returns the last message the client sent, which must be of type want.
func (h *harness) last(want dhcpv6.MessageType) *dhcpv6.Message {
	h.t.Helper()
	if len(h.sent) == 0 {
		h.t.Fatalf("client sent nothing, want %v", want)
	}
	m := h.sent[len(h.sent)-1]
	if m.MessageType != want {
		h.t.Fatalf("client sent %v, want %v", m.MessageType, want)
	}
	return m
}

// answer sends the client a server message in response to req.
func (h *harness) answer(req *dhcpv6.Message, typ dhcpv6.MessageType, opts ...dhcpv6.Option) {
	h.t.Helper()
	m := &dhcpv6.Message{MessageType: typ, TransactionID: req.TransactionID}
	m.AddOption(dhcpv6.OptClientID(req.Options.ClientID()))
	m.AddOption(dhcpv6.OptServerID(testServerID))
	for _, o := range opts {
		m.AddOption(o)
	}
	h.m.receive(m.ToBytes(), false, h.now)
}

// wantAsked checks that the client's last message, of type typ, asks for
// exactly the prefix want (see wantAsks).
func (h *harness) wantAsked(typ dhcpv6.MessageType, want string) {
	h.t.Helper()
	wantAsks(h.t, h.last(typ), want)
}

// wantAsks checks that the client's message m asks for exactly the prefix
// want in its IA_PD: a hint in a Solicit, the lease in a Request, Renew or
// Rebind.
func wantAsks(t *testing.T, m *dhcpv6.Message, want string) {
	t.Helper()
	if got := iaPrefixes(m); len(got) != 1 || got[0] != want {
		t.Errorf("%v asks for %v, want %s", m.MessageType, got, want)
	}
}

// testIAPD is the delegation most tests bind: 2001:db8:1000:100::/56,
// T1 1 h, T2 2 h, preferred for 3 h, valid for 4 h.
func testIAPD() *dhcpv6.OptIAPD {
	return iapdOpt(time.Hour, 2*time.Hour, prefixOpt("2001:db8:1000:100::/56", 3*time.Hour, 4*time.Hour))
}

// bindTest binds testIAPD's prefix with its times.
func (h *harness) bindTest() {
	h.t.Helper()
	h.bind("2001:db8:1000:100::/56", time.Hour, 2*time.Hour, 3*time.Hour, 4*time.Hour)
}

// renewWith binds testIAPD, lets the clock reach T1 and answers the
// client's Renew with a Reply carrying opts.
func (h *harness) renewWith(opts ...dhcpv6.Option) {
	h.t.Helper()
	h.bindTest()
	h.advance()
	h.answer(h.last(dhcpv6.MessageTypeRenew), dhcpv6.MessageTypeReply, opts...)
}

// firstSolicit starts the client with no lease and returns the Solicit it
// sends first.
func (h *harness) firstSolicit() *dhcpv6.Message {
	h.t.Helper()
	h.m.start(nil, h.now)
	h.advance()
	return h.last(dhcpv6.MessageTypeSolicit)
}

func (h *harness) bind(prefix string, t1, t2, preferred, valid time.Duration, extra ...dhcpv6.Option) {
	h.t.Helper()
	sol := h.firstSolicit()
	h.answer(sol, dhcpv6.MessageTypeAdvertise, iapdOpt(t1, t2, prefixOpt(prefix, preferred, valid)))
	h.advance() // end of the first RT: Request the collected Advertise
	req := h.last(dhcpv6.MessageTypeRequest)
	h.answer(req, dhcpv6.MessageTypeReply, append([]dhcpv6.Option{iapdOpt(t1, t2, prefixOpt(prefix, preferred, valid))}, extra...)...)
	if h.m.phase != phaseBound {
		h.t.Fatalf("phase %v after Reply, want bound", h.m.phase)
	}
}

func iaPrefixes(m *dhcpv6.Message) []string {
	var out []string
	if ia := m.Options.OneIAPD(); ia != nil {
		for _, p := range ia.Options.Prefixes() {
			out = append(out, p.Prefix.String())
		}
	}
	return out
}

func TestExchangeSolicitToRebindToExpiry(t *testing.T) {
	h := newHarness(t)
	sol := h.firstSolicit()
	// RFC 8415 18.2.1: the hint carries the wanted length as ::/56.
	wantAsks(t, sol, "::/56")
	if !sol.IsOptionRequested(dhcpv6.OptionDNSRecursiveNameServer) {
		t.Error("Solicit does not request OPTION_DNS_SERVERS")
	}
	if sol.GetOneOption(dhcpv6.OptionReconfAccept) == nil {
		t.Error("Solicit lacks Reconfigure Accept")
	}
	h.answer(sol, dhcpv6.MessageTypeAdvertise, testIAPD())
	if h.m.phase != phaseSolicit {
		t.Fatal("RFC 8415 18.2.1: the client must collect Advertises for the first RT")
	}
	h.advance()
	req := h.last(dhcpv6.MessageTypeRequest)
	if !req.Options.ServerID().Equal(testServerID) {
		t.Errorf("Request server ID %v, want the Advertise's", req.Options.ServerID())
	}
	wantAsks(t, req, "2001:db8:1000:100::/56")
	bound := h.now
	h.answer(req, dhcpv6.MessageTypeReply, testIAPD(),
		dhcpv6.OptDNS(net.ParseIP("2001:db8:0:1::53")))
	if len(h.leases) != 1 || h.leases[0].Prefix != netip.MustParsePrefix("2001:db8:1000:100::/56") {
		t.Fatalf("leases %v", h.leases)
	}
	if h.stored == nil || h.stored.Prefix != h.leases[0].Prefix {
		t.Error("lease not persisted")
	}
	if got := h.leases[0].DNS; len(got) != 1 || got[0] != netip.MustParseAddr("2001:db8:0:1::53") {
		t.Errorf("DNS %v", got)
	}

	// RFC 8415 18.2.4: Renew at T1, to the server that granted the lease.
	h.advance()
	if want := bound.Add(time.Hour); !h.now.Equal(want) {
		t.Errorf("Renew at %v, want T1 %v", h.now.Sub(bound), time.Hour)
	}
	ren := h.last(dhcpv6.MessageTypeRenew)
	if !ren.Options.ServerID().Equal(testServerID) {
		t.Error("Renew lacks the server ID")
	}
	wantAsks(t, ren, "2001:db8:1000:100::/56")
	// No answer: Renew retransmits until T2, then Rebind (18.2.5).
	for h.m.phase == phaseRenew {
		h.advance()
	}
	if want := bound.Add(2 * time.Hour); !h.now.Equal(want) {
		t.Errorf("Rebind at %v, want T2 %v", h.now.Sub(bound), 2*time.Hour)
	}
	reb := h.last(dhcpv6.MessageTypeRebind)
	if reb.Options.ServerID() != nil {
		t.Error("RFC 8415 18.2.5: Rebind must not carry a Server Identifier")
	}
	// Retransmitted Renews carry a growing elapsed time (21.9).
	var renews int
	for _, m := range h.sent {
		if m.MessageType == dhcpv6.MessageTypeRenew {
			renews++
		}
	}
	if renews < 2 {
		t.Errorf("%d Renews between T1 and T2, want retransmissions", renews)
	}
	// No answer to Rebind: the lease ends at its valid lifetime.
	for h.m.phase == phaseRebind {
		h.advance()
	}
	if want := bound.Add(4 * time.Hour); !h.now.Equal(want) {
		t.Errorf("lease lost at %v, want valid lifetime %v", h.now.Sub(bound), 4*time.Hour)
	}
	if len(h.lost) != 1 || h.lost[0] != netip.MustParsePrefix("2001:db8:1000:100::/56") {
		t.Errorf("lost %v", h.lost)
	}
	// And the client solicits again, hinting the prefix it had.
	h.advance()
	h.wantAsked(dhcpv6.MessageTypeSolicit, "2001:db8:1000:100::/56")
}

func TestRenewExtendsLease(t *testing.T) {
	h := newHarness(t)
	h.renewWith(testIAPD())
	if len(h.leases) != 2 || !h.leases[1].ValidUntil.Equal(h.now.Add(4*time.Hour)) {
		t.Fatalf("leases %+v, want an extension", h.leases)
	}
	if len(h.lost) != 0 {
		t.Errorf("lost %v on a plain renewal", h.lost)
	}
	if s := h.m.stats.Snapshot(); s.Renews != 1 || s.Replies != 2 || s.Solicits != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestNoBindingOnRenewRequestsAgain(t *testing.T) {
	h := newHarness(t)
	h.renewWith(iapdOpt(0, 0, &dhcpv6.OptStatusCode{StatusCode: iana.StatusNoBinding}))
	// RFC 8415 18.2.10.1: NoBinding → Request for the same IA.
	req := h.last(dhcpv6.MessageTypeRequest)
	wantAsks(t, req, "2001:db8:1000:100::/56")
	if !req.Options.ServerID().Equal(testServerID) {
		t.Error("Request after NoBinding lacks the server ID")
	}
	if h.m.stats.Snapshot().NoBinding != 1 {
		t.Error("NoBinding not counted")
	}
}

func TestNoPrefixAvailBacksOffExponentially(t *testing.T) {
	h := newHarness(t)
	h.m.start(nil, h.now)
	var waits []time.Duration
	for range 3 {
		h.advance()
		sol := h.last(dhcpv6.MessageTypeSolicit)
		h.answer(sol, dhcpv6.MessageTypeAdvertise, testIAPD())
		h.advance()
		req := h.last(dhcpv6.MessageTypeRequest)
		h.answer(req, dhcpv6.MessageTypeReply, iapdOpt(0, 0, &dhcpv6.OptStatusCode{StatusCode: iana.StatusNoPrefixAvail}))
		if h.m.phase != phaseBackoff {
			t.Fatalf("phase %v after NoPrefixAvail, want backoff", h.m.phase)
		}
		waits = append(waits, h.m.wake().Sub(h.now))
	}
	want := []time.Duration{minNoPrefixBackoff, 2 * minNoPrefixBackoff, 4 * minNoPrefixBackoff}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("backoffs %v, want %v", waits, want)
		}
	}
	if len(h.leases) != 0 {
		t.Error("a lease from NoPrefixAvail")
	}
}

func TestAdvertiseWithNoPrefixAvailIsIgnored(t *testing.T) {
	h := newHarness(t)
	sol := h.firstSolicit()
	h.answer(sol, dhcpv6.MessageTypeAdvertise, iapdOpt(0, 0, &dhcpv6.OptStatusCode{StatusCode: iana.StatusNoPrefixAvail}))
	h.advance()
	// RFC 8415 18.2.9: still soliciting, with the §15 backoff.
	h.last(dhcpv6.MessageTypeSolicit)
	if h.m.stats.Snapshot().NoPrefixAvail != 1 {
		t.Error("NoPrefixAvail not counted")
	}
}

func TestInvalidReplyIsCountedAndLeaseKept(t *testing.T) {
	h := newHarness(t)
	// T1 > T2: RFC 8415 21.21 says discard the IA_PD; the lease stays.
	h.renewWith(iapdOpt(3*time.Hour, time.Hour, prefixOpt("2001:db8:1000:100::/56", 3*time.Hour, 4*time.Hour)))
	if h.m.lease == nil || h.m.phase != phaseRenew {
		t.Errorf("phase %v lease %v after invalid Reply; want still renewing the old lease", h.m.phase, h.m.lease)
	}
	if got := h.m.stats.Snapshot().InvalidLeases[ReasonT1OverT2]; got != 1 {
		t.Errorf("InvalidLeases[%s] = %d", ReasonT1OverT2, got)
	}
}

func TestRenumberingReportsOldPrefixLost(t *testing.T) {
	h := newHarness(t)
	// Kea's answer after a pool change: old prefix with lifetimes 0, new one.
	h.renewWith(iapdOpt(time.Hour, 2*time.Hour,
		prefixOpt("2001:db8:1000:100::/56", 0, 0),
		prefixOpt("2001:db8:2000:200::/56", 3*time.Hour, 4*time.Hour)))
	if len(h.lost) != 1 || h.lost[0] != netip.MustParsePrefix("2001:db8:1000:100::/56") {
		t.Errorf("lost %v, want the old prefix", h.lost)
	}
	if got := h.leases[len(h.leases)-1].Prefix; got != netip.MustParsePrefix("2001:db8:2000:200::/56") {
		t.Errorf("new lease %v", got)
	}
}

func TestWithdrawnPrefixIsLost(t *testing.T) {
	h := newHarness(t)
	h.renewWith(iapdOpt(time.Hour, 2*time.Hour, prefixOpt("2001:db8:1000:100::/56", 0, 0)))
	if len(h.lost) != 1 || h.m.lease != nil || h.m.phase != phaseSolicit {
		t.Errorf("lost %v lease %v phase %v; want the prefix withdrawn and a new Solicit", h.lost, h.m.lease, h.m.phase)
	}
}

func TestRestartWithValidLeaseRebinds(t *testing.T) {
	h := newHarness(t)
	prev := &Lease{
		Prefix: netip.MustParsePrefix("2001:db8:1000:100::/56"), PreferredUntil: h.now.Add(time.Hour),
		ValidUntil: h.now.Add(2 * time.Hour), T1: h.now.Add(-time.Minute), T2: h.now.Add(time.Minute),
		ServerID: testServerID.ToBytes(),
	}
	h.m.start(prev, h.now)
	// RFC 8415 18.2.12: keep using it, and Rebind at once.
	if len(h.leases) != 1 || h.leases[0].Prefix != prev.Prefix {
		t.Fatalf("leases %v, want the persisted one reported at start", h.leases)
	}
	reb := h.last(dhcpv6.MessageTypeRebind)
	wantAsks(t, reb, "2001:db8:1000:100::/56")
}

func TestRestartWithExpiredLeaseHintsIt(t *testing.T) {
	h := newHarness(t)
	prev := &Lease{Prefix: netip.MustParsePrefix("2001:db8:1000:100::/56"), ValidUntil: h.now.Add(-time.Hour)}
	h.m.start(prev, h.now)
	h.advance()
	h.wantAsked(dhcpv6.MessageTypeSolicit, "2001:db8:1000:100::/56")
	if len(h.leases) != 0 {
		t.Error("an expired lease was reported")
	}
}

func reconfigureMsg(t *testing.T, serverID dhcpv6.DUID, msgType dhcpv6.MessageType, replay uint64, key []byte) []byte {
	t.Helper()
	m := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeReconfigure}
	m.AddOption(dhcpv6.OptServerID(serverID))
	m.AddOption(dhcpv6.OptClientID(testClientDUID))
	m.AddOption(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionReconfMessage, OptionData: []byte{byte(msgType)}})
	m.AddOption(authOptionBytes(replay, authInfoHMAC, make([]byte, md5.Size)))
	raw := m.ToBytes()
	if key != nil {
		if err := signReconfigure(raw, key); err != nil {
			t.Fatal(err)
		}
	}
	return raw
}

func TestReconfigure(t *testing.T) {
	key := []byte("0123456789abcdef")
	wrongKey := []byte("fedcba9876543210")
	other := &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{2, 0, 0, 0, 0, 0x99}}
	tests := []struct {
		name      string
		sendKey   bool // the server sent a reconfigure key in its Reply
		raw       func(t *testing.T) []byte
		accept    bool
		want      dhcpv6.MessageType
		multicast bool
	}{
		{"RFC 8415 16.11: a Reconfigure sent to a group is dropped", true,
			func(t *testing.T) []byte { return reconfigureMsg(t, testServerID, dhcpv6.MessageTypeRenew, 2, key) }, false, 0, true},
		{"RFC 8415 20.4.4: correct HMAC-MD5 with the reconfigure key → Renew", true,
			func(t *testing.T) []byte { return reconfigureMsg(t, testServerID, dhcpv6.MessageTypeRenew, 2, key) }, true, dhcpv6.MessageTypeRenew, false},
		{"RFC 8415 18.2.11: msg-type Rebind → Rebind", true,
			func(t *testing.T) []byte { return reconfigureMsg(t, testServerID, dhcpv6.MessageTypeRebind, 2, key) }, true, dhcpv6.MessageTypeRebind, false},
		{"RFC 8415 20.4.4: wrong digest is dropped", true,
			func(t *testing.T) []byte {
				return reconfigureMsg(t, testServerID, dhcpv6.MessageTypeRenew, 2, wrongKey)
			}, false, 0, false},
		{"RFC 8415 18.2.11: without a key from the server, Reconfigure is dropped", false,
			func(t *testing.T) []byte { return reconfigureMsg(t, testServerID, dhcpv6.MessageTypeRenew, 2, key) }, false, 0, false},
		{"RFC 8415 20.3: replay detection not increasing is dropped", true,
			func(t *testing.T) []byte { return reconfigureMsg(t, testServerID, dhcpv6.MessageTypeRenew, 1, key) }, false, 0, false},
		{"RFC 8415 18.2.11: another server's Reconfigure is dropped", true,
			func(t *testing.T) []byte { return reconfigureMsg(t, other, dhcpv6.MessageTypeRenew, 2, key) }, false, 0, false},
		{"RFC 8415 18.2.11: no authentication option is dropped", true,
			func(t *testing.T) []byte {
				m := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeReconfigure}
				m.AddOption(dhcpv6.OptServerID(testServerID))
				m.AddOption(dhcpv6.OptClientID(testClientDUID))
				m.AddOption(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionReconfMessage, OptionData: []byte{byte(dhcpv6.MessageTypeRenew)}})
				return m.ToBytes()
			}, false, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			var extra []dhcpv6.Option
			if tt.sendKey {
				extra = append(extra, authOptionBytes(1, authInfoKey, key))
			}
			h.bind("2001:db8:1000:100::/56", time.Hour, 2*time.Hour, 3*time.Hour, 4*time.Hour, extra...)
			before := len(h.sent)
			h.m.receive(tt.raw(t), tt.multicast, h.now)
			s := h.m.stats.Snapshot()
			if tt.accept {
				if s.ReconfigureAccepted != 1 {
					t.Fatalf("not accepted: %+v", s)
				}
				h.last(tt.want)
				return
			}
			if s.ReconfigureDropped != 1 || s.ReconfigureAccepted != 0 || len(h.sent) != before {
				t.Errorf("not dropped: stats %+v, sent %d new messages", s, len(h.sent)-before)
			}
		})
	}
}

func TestVerifyReconfigureRejectsTruncatedAuth(t *testing.T) {
	raw := reconfigureMsg(t, testServerID, dhcpv6.MessageTypeRenew, 2, []byte("0123456789abcdef"))
	// Cut the message inside the authentication option.
	if _, err := verifyReconfigure(raw[:len(raw)-4], []byte("0123456789abcdef")); err == nil {
		t.Error("truncated Reconfigure verified")
	}
}

func TestForeignAndMalformedPacketsAreCounted(t *testing.T) {
	h := newHarness(t)
	sol := h.firstSolicit()
	h.m.receive([]byte{2, 1}, false, h.now)
	// Another client's Advertise.
	m := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeAdvertise, TransactionID: sol.TransactionID}
	m.AddOption(dhcpv6.OptClientID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{2, 9, 9, 9, 9, 9}}))
	m.AddOption(dhcpv6.OptServerID(testServerID))
	h.m.receive(m.ToBytes(), false, h.now)
	s := h.m.stats.Snapshot()
	if s.Malformed != 1 || s.Ignored != 1 || s.Advertises != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestLinkChangeRebinds(t *testing.T) {
	h := newHarness(t)
	h.bindTest()
	// RFC 8415 18.2.12: after the link comes back, confirm the lease with
	// Rebind at once rather than waiting for T1.
	h.m.refresh(h.now)
	reb := h.last(dhcpv6.MessageTypeRebind)
	h.answer(reb, dhcpv6.MessageTypeReply, testIAPD())
	if h.m.phase != phaseBound || len(h.lost) != 0 || len(h.leases) != 2 {
		t.Errorf("phase %v lost %v leases %d", h.m.phase, h.lost, len(h.leases))
	}
}

func TestLinkChangeWhileSolicitingRestartsAtOnce(t *testing.T) {
	h := newHarness(t)
	h.m.start(nil, h.now)
	for range 8 { // Solicit backoff grows towards SOL_MAX_RT
		h.advance()
	}
	n := len(h.sent)
	h.m.refresh(h.now)
	if len(h.sent) != n+1 {
		t.Fatal("no immediate Solicit after the link came back")
	}
	h.last(dhcpv6.MessageTypeSolicit)
	if w := h.m.wake().Sub(h.now); w > 2*time.Second {
		t.Errorf("next retransmission in %v, want the schedule restarted from IRT", w)
	}
}

func TestLinkChangeDuringRequestKeepsTheExchange(t *testing.T) {
	h := newHarness(t)
	h.answer(h.firstSolicit(), dhcpv6.MessageTypeAdvertise, testIAPD())
	h.advance()
	req := h.last(dhcpv6.MessageTypeRequest)
	h.m.refresh(h.now)
	if h.m.phase != phaseRequest || h.m.xid != req.TransactionID {
		t.Fatalf("phase %v after a link change during Request, want the Request kept", h.m.phase)
	}
}

func TestLostPrefixIsStoredAsEndedHint(t *testing.T) {
	h := newHarness(t)
	h.renewWith(iapdOpt(time.Hour, 2*time.Hour, prefixOpt("2001:db8:1000:100::/56", 0, 0)))
	if h.stored == nil || h.stored.Prefix != netip.MustParsePrefix("2001:db8:1000:100::/56") || h.stored.ValidUntil.After(h.now) {
		t.Fatalf("stored %+v after withdrawal, want the prefix with its lifetime ended", h.stored)
	}
	// A restart from that file solicits with the hint and reports nothing.
	h2 := newHarness(t)
	h2.now = h.now
	h2.m.start(h.stored, h2.now)
	if len(h2.leases) != 0 {
		t.Errorf("a withdrawn prefix came back as a lease: %v", h2.leases)
	}
	h2.advance()
	h2.wantAsked(dhcpv6.MessageTypeSolicit, "2001:db8:1000:100::/56")
}

func TestRebindOfAnEndedLeaseSolicits(t *testing.T) {
	h := newHarness(t)
	h.bindTest()
	// The link comes back after the lease ended, before tick noticed.
	h.now = h.now.Add(5 * time.Hour)
	h.m.refresh(h.now)
	if len(h.lost) != 1 || h.m.phase != phaseSolicit {
		t.Errorf("lost %v phase %v; want the lease dropped and a Solicit, not an unbounded Rebind", h.lost, h.m.phase)
	}
}
