package upnp

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"codeberg.org/monostack/gizmo/internal/boundedhttp"
	"codeberg.org/monostack/gizmo/internal/testrun"
)

// fakeBackend records what the service asks and answers as told.
type fakeBackend struct {
	mu      sync.Mutex
	added   []PinholeRequest
	updated []uint16
	deleted []uint16
	refuse  error
	allowed bool
}

func (b *fakeBackend) AddPinhole(r PinholeRequest) (Pinhole, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.refuse != nil {
		return Pinhole{}, b.refuse
	}
	b.added = append(b.added, r)
	return Pinhole{ID: uint16(len(b.added)), Expires: time.Now().Add(r.Lease)}, nil
}

func (b *fakeBackend) UpdatePinhole(src netip.Addr, id uint16, lease time.Duration) (Pinhole, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.refuse != nil {
		return Pinhole{}, b.refuse
	}
	b.updated = append(b.updated, id)
	return Pinhole{ID: id}, nil
}

func (b *fakeBackend) DeletePinhole(src netip.Addr, id uint16) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.refuse != nil {
		return b.refuse
	}
	b.deleted = append(b.deleted, id)
	return nil
}

func (b *fakeBackend) Pinhole(src netip.Addr, id uint16) (Pinhole, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.refuse != nil {
		return Pinhole{}, b.refuse
	}
	return Pinhole{ID: id, Client: src, Proto: 6, Port: 8090}, nil
}

// fakeFlows has flows towards the endpoints it holds.
type fakeFlows map[endpoint]int

func (f fakeFlows) count(client netip.Addr, proto uint8, port uint16) (int, error) {
	return f[endpoint{client, proto, port}], nil
}

func (b *fakeBackend) PinholesAllowed(src netip.Addr) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.allowed
}

const hostAddr = "2001:db8:1000:100::5"

// inFlow is the conntrack flow the test services see: towards the host's
// TCP port 8090, as after an inbound connection.
var inFlow = endpoint{netip.MustParseAddr(hostAddr), 6, 8090}

func newTestService(t *testing.T, b Backend, lim Limits) (*Service, http.Handler) {
	t.Helper()
	s, err := New(Config{Interface: "lan0", Backend: b, Limits: lim, ConntrackDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	return s, s.handler(testPlan, fakeFlows{inFlow: 1})
}

// soap sends one control request from the host and returns the HTTP
// status and the out arguments, or the UPnP error code.
func soap(t *testing.T, h http.Handler, action string, args ...string) (status int, out map[string]string, code int) {
	t.Helper()
	var body strings.Builder
	body.WriteString(`<u:` + action + ` xmlns:u="` + firewallService + `">`)
	for i := 0; i+1 < len(args); i += 2 {
		body.WriteString("<" + args[i] + ">" + args[i+1] + "</" + args[i] + ">")
	}
	body.WriteString(`</u:` + action + `>`)
	req := httptest.NewRequest(http.MethodPost, "http://[2001:db8:1000:100::1]:5000"+controlPath, strings.NewReader(envelope(body.String())))
	req.RemoteAddr = "[" + hostAddr + "]:40000"
	req.Header.Set("SOAPAction", `"`+firewallService+`#`+action+`"`)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Body)
	if rec.Code == http.StatusInternalServerError {
		var env struct {
			Code int `xml:"Body>Fault>detail>UPnPError>errorCode"`
		}
		if err := xml.Unmarshal(b, &env); err != nil {
			t.Fatalf("fault that does not parse: %v\n%s", err, b)
		}
		return rec.Code, nil, env.Code
	}
	if rec.Code != http.StatusOK {
		return rec.Code, nil, 0
	}
	c, err := parseCall(b, `"`+firewallService+`#`+action+`Response"`, firewallService)
	if err != nil {
		t.Fatalf("response that does not parse: %v\n%s", err, b)
	}
	return rec.Code, c.Args, 0
}

// addArgs are AddPinhole's arguments with some replaced.
func addArgs(repl ...string) []string {
	args := []string{"RemoteHost", "", "RemotePort", "0", "InternalClient", hostAddr, "InternalPort", "8090", "Protocol", "6", "LeaseTime", "3600"}
	for i := 0; i+1 < len(repl); i += 2 {
		for j := 0; j < len(args); j += 2 {
			if args[j] == repl[i] {
				args[j+1] = repl[i+1]
			}
		}
	}
	return args
}

func TestAddPinholeArguments(t *testing.T) {
	host := netip.MustParseAddr(hostAddr)
	tests := []struct {
		name string
		args []string
		want PinholeRequest
		code int
	}{
		{name: "miniupnpc's request: any remote, TCP 8090 for an hour", args: addArgs(),
			want: PinholeRequest{Source: host, Client: host, Port: 8090, Proto: 6, Lease: time.Hour}},
		{name: "a remote host and port, UDP", args: addArgs("RemoteHost", "2001:db8:ffff::10", "RemotePort", "3478", "Protocol", "17"),
			want: PinholeRequest{Source: host, RemoteHost: netip.MustParseAddr("2001:db8:ffff::10"), RemotePort: 3478, Client: host, Port: 8090, Proto: 17, Lease: time.Hour}},
		{name: "* and :: are the remote wildcard too", args: addArgs("RemoteHost", "*"),
			want: PinholeRequest{Source: host, Client: host, Port: 8090, Proto: 6, Lease: time.Hour}},
		{name: "a lease above a day is passed on for the backend to clamp", args: addArgs("LeaseTime", "1000000"),
			want: PinholeRequest{Source: host, Client: host, Port: 8090, Proto: 6, Lease: 1000000 * time.Second}},
		{name: "708: InternalClient may not be the wildcard", args: addArgs("InternalClient", ""), code: 708},
		{name: "706: InternalPort may not be the wildcard", args: addArgs("InternalPort", "0"), code: 706},
		{name: "707: Protocol may not be the wildcard", args: addArgs("Protocol", "65535"), code: 707},
		{name: "705: UDP-Lite has no firewall rule", args: addArgs("Protocol", "136"), code: 705},
		{name: "402: LeaseTime 0 is below A_ARG_TYPE_LeaseTime's range", args: addArgs("LeaseTime", "0"), code: 402},
		{name: "402: a name is not resolved", args: addArgs("RemoteHost", "peer.example.test"), code: 402},
		{name: "402: an IPv4 InternalClient", args: addArgs("InternalClient", "203.0.113.140"), code: 402},
		{name: "402: a port above 65535", args: addArgs("InternalPort", "65536"), code: 402},
		{name: "402: an argument missing", args: addArgs()[:10], code: 402},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := &fakeBackend{}
			_, h := newTestService(t, b, Limits{})
			status, out, code := soap(t, h, "AddPinhole", tc.args...)
			if tc.code != 0 {
				if code != tc.code || len(b.added) != 0 {
					t.Fatalf("status %d code %d, backend asked %d times; want fault %d and no backend call", status, code, len(b.added), tc.code)
				}
				return
			}
			if status != http.StatusOK || out["UniqueID"] != "1" {
				t.Fatalf("status %d, out %v, code %d; want UniqueID 1", status, out, code)
			}
			if len(b.added) != 1 || b.added[0] != tc.want {
				t.Errorf("backend asked %+v, want %+v", b.added, tc.want)
			}
		})
	}
}

// The backend's refusals are answered with the codes of
// WANIPv6FirewallControl:1 and counted by reason.
func TestRefusalCodes(t *testing.T) {
	tests := []struct {
		kind RefusalKind
		code int
	}{
		{NotAuthorized, 606}, {NotAllowed, 703}, {SpaceExhausted, 701}, {NoSuchEntry, 704},
	}
	for _, tc := range tests {
		b := &fakeBackend{refuse: &Refusal{Kind: tc.kind, Reason: "some_reason"}}
		s, h := newTestService(t, b, Limits{})
		for _, call := range []struct {
			action string
			args   []string
		}{
			{"AddPinhole", addArgs()}, {"UpdatePinhole", []string{"UniqueID", "3", "NewLeaseTime", "60"}}, {"DeletePinhole", []string{"UniqueID", "3"}},
		} {
			if _, _, code := soap(t, h, call.action, call.args...); code != tc.code {
				t.Errorf("%s refused with kind %d: code %d, want %d", call.action, tc.kind, code, tc.code)
			}
		}
		st := s.Stats()
		if st.Refused["some_reason"] != 3 || st.Requests[RequestKey{"AddPinhole", strconv.Itoa(tc.code)}] != 1 {
			t.Errorf("kind %d: counters %+v", tc.kind, st)
		}
	}
	// Anything else from the backend is 501 Action Failed.
	b := &fakeBackend{refuse: errors.New("disk on fire")}
	_, h := newTestService(t, b, Limits{})
	if _, _, code := soap(t, h, "AddPinhole", addArgs()...); code != 501 {
		t.Errorf("backend error: code %d, want 501", code)
	}
}

func TestOtherActions(t *testing.T) {
	b := &fakeBackend{allowed: true}
	s, _ := newTestService(t, b, Limits{})
	flows := fakeFlows{inFlow: 1}
	h := s.handler(testPlan, flows)
	dir := s.cfg.ConntrackDir
	os.WriteFile(filepath.Join(dir, "nf_conntrack_tcp_timeout_established"), []byte("7200\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "nf_conntrack_udp_timeout_stream"), []byte("180\n"), 0o644)

	if _, out, _ := soap(t, h, "GetFirewallStatus"); out["FirewallEnabled"] != "1" || out["InboundPinholeAllowed"] != "1" {
		t.Errorf("GetFirewallStatus of an allowed host = %v", out)
	}
	b.allowed = false
	if _, out, _ := soap(t, h, "GetFirewallStatus"); out["InboundPinholeAllowed"] != "0" {
		t.Errorf("GetFirewallStatus of a host without app pinholes = %v", out)
	}
	tuple := func(proto string) []string {
		return []string{"RemoteHost", "", "RemotePort", "0", "InternalClient", hostAddr, "InternalPort", "8090", "Protocol", proto}
	}
	for proto, want := range map[string]string{"6": "7200", "17": "180", "65535": "180"} {
		if _, out, code := soap(t, h, "GetOutboundPinholeTimeout", tuple(proto)...); out["OutboundPinholeTimeout"] != want {
			t.Errorf("GetOutboundPinholeTimeout for protocol %s = %v (code %d), want %s", proto, out, code, want)
		}
	}
	if _, _, code := soap(t, h, "GetOutboundPinholeTimeout", tuple("1")...); code != 705 {
		t.Errorf("GetOutboundPinholeTimeout for ICMP: code %d, want 705", code)
	}
	if _, _, code := soap(t, h, "UpdatePinhole", "UniqueID", "3", "NewLeaseTime", "0"); code != 402 {
		t.Errorf("UpdatePinhole with lease 0: code %d, want 402", code)
	}
	if _, _, code := soap(t, h, "UpdatePinhole", "UniqueID", "70000", "NewLeaseTime", "60"); code != 402 {
		t.Errorf("UpdatePinhole with a UniqueID above ui2: code %d, want 402", code)
	}
	soap(t, h, "UpdatePinhole", "UniqueID", "3", "NewLeaseTime", "60")
	soap(t, h, "DeletePinhole", "UniqueID", "4")
	if !slices.Equal(b.updated, []uint16{3}) || !slices.Equal(b.deleted, []uint16{4}) {
		t.Errorf("backend updated %v, deleted %v", b.updated, b.deleted)
	}
	if _, _, code := soap(t, h, "GetPinholePackets", "UniqueID", "3"); code != 602 {
		t.Errorf("GetPinholePackets: code %d, want 602 (no per-pinhole counters)", code)
	}
	if _, out, _ := soap(t, h, "CheckPinholeWorking", "UniqueID", "3"); out["IsWorking"] != "1" {
		t.Errorf("CheckPinholeWorking with a flow in: %v, want IsWorking 1", out)
	}
	delete(flows, inFlow)
	if _, _, code := soap(t, h, "CheckPinholeWorking", "UniqueID", "3"); code != 709 {
		t.Errorf("CheckPinholeWorking without a flow: code %d, want 709 NoPacketSent", code)
	}
	if _, _, code := soap(t, h, "AddPortMapping"); code != 401 {
		t.Errorf("AddPortMapping: code %d, want 401", code)
	}
	if n := s.Stats().Requests[RequestKey{"other", "401"}]; n != 1 {
		t.Errorf("unknown actions counted as %d under other/401, want 1", n)
	}
}

// The guard turns away what is no control point's request.
func TestGuard(t *testing.T) {
	b := &fakeBackend{}
	s, h := newTestService(t, b, Limits{Requests: 1, RequestBurst: 3})
	do := func(host string, hdr ...string) int {
		req := httptest.NewRequest(http.MethodGet, "http://x"+descPath, nil)
		req.Host = host
		req.RemoteAddr = "[" + hostAddr + "]:40000"
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	if c := do("evil.example.test:5000"); c != http.StatusMisdirectedRequest {
		t.Errorf("DNS rebinding (a foreign Host): %d, want 421", c)
	}
	if c := do("[2001:db8:1000:100::1]:8080"); c != http.StatusMisdirectedRequest {
		t.Errorf("another port in Host: %d, want 421", c)
	}
	if c := do("[2001:db8:1000:100::1]:5000", "Origin", "http://evil.example.test"); c != http.StatusForbidden {
		t.Errorf("a web page's request: %d, want 403", c)
	}
	for i := range 3 {
		if c := do("[2001:db8:1000:100::1]:5000"); c != http.StatusOK {
			t.Fatalf("request %d within the burst: %d", i, c)
		}
	}
	if c := do("203.0.113.129:5000"); c != http.StatusServiceUnavailable {
		t.Errorf("beyond the burst: %d, want 503", c)
	}
	st := s.Stats()
	if st.Refused[refusedBadHost] != 2 || st.Refused[refusedCrossSite] != 1 || st.Refused[refusedRateLimited] != 1 {
		t.Errorf("refusals %v", st.Refused)
	}

	big := httptest.NewRequest(http.MethodPost, "http://x"+controlPath, strings.NewReader(envelope(strings.Repeat(" ", maxBody))))
	big.Host, big.RemoteAddr = "[fd12:3456:789a::1]:5000", "[fd12:3456:789a::99]:1"
	big.Header.Set("SOAPAction", addPinholeAction)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, big)
	if rec.Code != http.StatusRequestEntityTooLarge || s.Stats().Refused[refusedBodyTooLarge] != 1 {
		t.Errorf("a body above 8 KiB: %d, refusals %v", rec.Code, s.Stats().Refused)
	}
}

// The descriptions parse, name the service where IGD:2 puts it, and list
// exactly the actions implemented.
func TestDescriptions(t *testing.T) {
	var root struct {
		Device struct {
			Type    string `xml:"deviceType"`
			UDN     string `xml:"UDN"`
			Devices []struct {
				Type    string `xml:"deviceType"`
				Devices []struct {
					Type     string `xml:"deviceType"`
					Services []struct {
						Type    string `xml:"serviceType"`
						SCPD    string `xml:"SCPDURL"`
						Control string `xml:"controlURL"`
					} `xml:"serviceList>service"`
				} `xml:"deviceList>device"`
			} `xml:"deviceList>device"`
		} `xml:"device"`
	}
	desc := description(testPlan)
	if err := xml.Unmarshal(desc, &root); err != nil {
		t.Fatal(err)
	}
	if body := strings.TrimPrefix(string(desc), xml.Header); strings.Contains(body, ">\n<") || strings.Contains(body, "> <") {
		t.Error("whitespace between elements, which miniupnpc's parser takes for text")
	}
	dv := root.Device
	if dv.Type != rootDeviceType || dv.UDN != "uuid:"+testPlan.UUID || len(dv.Devices) != 1 || dv.Devices[0].Type != wanDeviceType ||
		len(dv.Devices[0].Devices) != 1 || dv.Devices[0].Devices[0].Type != wanConnDeviceType {
		t.Fatalf("device tree %+v", dv)
	}
	svc := dv.Devices[0].Devices[0].Services
	if len(svc) != 1 || svc[0].Type != firewallService || svc[0].SCPD != scpdPath || svc[0].Control != controlPath {
		t.Errorf("services %+v", svc)
	}

	var s struct {
		Actions []string `xml:"actionList>action>name"`
	}
	if err := xml.Unmarshal(scpd(), &s); err != nil {
		t.Fatal(err)
	}
	want := []string{"GetFirewallStatus", "GetOutboundPinholeTimeout", "AddPinhole", "UpdatePinhole", "DeletePinhole", "CheckPinholeWorking"}
	if diff := cmp.Diff(want, s.Actions); diff != "" {
		t.Errorf("SCPD actions (-want +got):\n%s", diff)
	}
}

// The HTTP server holds at most MaxConns connections, and a client that
// sends nothing loses its connection to the header timeout; both counted.
func TestConnectionBounds(t *testing.T) {
	s, h := newTestService(t, &fakeBackend{}, Limits{Bounds: boundedhttp.Bounds{MaxConns: 1, ReadHeaderTimeout: 100 * time.Millisecond}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := testrun.Start(t, "serving HTTP", func(ctx context.Context) error { return s.serveHTTP(ctx, ln, h) })
	var conns []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// The first holds the one slot and is closed after the header
	// timeout; then the second, which waited, gets it and is closed too.
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadAll(c); err != nil {
			t.Errorf("connection %d: %v, want the server to close it", i, err)
		}
		c.Close()
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.ConnTimeouts != 2 || st.ConnsLimited == 0 {
		t.Errorf("timeouts %d, limited %d; want 2 and some", st.ConnTimeouts, st.ConnsLimited)
	}
}
