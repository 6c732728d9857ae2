package upnp

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// msearch is an M-SEARCH as miniupnpc writes it.
func msearch(st string, mx int) []byte {
	return []byte("M-SEARCH * HTTP/1.1\r\nHOST: [FF02::C]:1900\r\nST: " + st + "\r\nMAN: \"ssdp:discover\"\r\nMX: " + strconv.Itoa(mx) + "\r\n\r\n")
}

func TestParseSearch(t *testing.T) {
	tests := []struct {
		name      string
		msg       []byte
		multicast bool
		want      search
		notSearch bool
		bad       bool
	}{
		{name: "UDA 1.1 1.3.2: miniupnpc's search for IGD:1", msg: msearch("urn:schemas-upnp-org:device:InternetGatewayDevice:1", 2), multicast: true,
			want: search{ST: "urn:schemas-upnp-org:device:InternetGatewayDevice:1", MX: 2}},
		{name: "UDA 1.1 1.3.2: MX above 5 counts as 5", msg: msearch("ssdp:all", 9), multicast: true, want: search{ST: "ssdp:all", MX: 5}},
		{name: "UDA 1.1 1.3.2: a multicast search needs MX", msg: []byte("M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nST: ssdp:all\r\nMAN: \"ssdp:discover\"\r\n\r\n"), multicast: true, bad: true},
		{name: "UDA 1.1 1.3.2: a unicast search is answered at once", msg: msearch("ssdp:all", 3), want: search{ST: "ssdp:all"}},
		{name: "header names in any case", msg: []byte("M-SEARCH * HTTP/1.1\r\nhost: [ff02::c]:1900\r\nst: upnp:rootdevice\r\nman: \"ssdp:discover\"\r\nmx: 1\r\n\r\n"), multicast: true,
			want: search{ST: "upnp:rootdevice", MX: 1}},
		{name: "UDA 1.1 1.3.2: MAN must be \"ssdp:discover\" with the quotes", msg: bytes.Replace(msearch("ssdp:all", 2), []byte(`"ssdp:discover"`), []byte("ssdp:discover"), 1), multicast: true, bad: true},
		{name: "no ST", msg: []byte("M-SEARCH * HTTP/1.1\r\nMAN: \"ssdp:discover\"\r\nMX: 2\r\n\r\n"), multicast: true, bad: true},
		{name: "a negative MX", msg: bytes.Replace(msearch("ssdp:all", 2), []byte("MX: 2"), []byte("MX: -1"), 1), multicast: true, bad: true},
		{name: "a request URI other than *", msg: bytes.Replace(msearch("ssdp:all", 2), []byte("M-SEARCH *"), []byte("M-SEARCH /x"), 1), multicast: true, bad: true},
		{name: "UDA 1.1 1.2.2: another device's NOTIFY is no search", msg: []byte("NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nNT: upnp:rootdevice\r\nNTS: ssdp:alive\r\n\r\n"), multicast: true, notSearch: true},
		{name: "another device's answer is no search", msg: []byte("HTTP/1.1 200 OK\r\nST: upnp:rootdevice\r\n\r\n"), notSearch: true},
		{name: "GET is no search", msg: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), notSearch: true},
		{name: "garbage", msg: []byte("\x00\x01\x02"), multicast: true, bad: true},
		{name: "larger than 8 KiB", msg: append(msearch("ssdp:all", 2), bytes.Repeat([]byte("X"), maxSearch)...), multicast: true, bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSearch(tc.msg, tc.multicast)
			switch {
			case tc.notSearch:
				if err != errNotSearch {
					t.Fatalf("err = %v, want errNotSearch", err)
				}
			case tc.bad:
				if err == nil || err == errNotSearch {
					t.Fatalf("err = %v, want a parse error (got %+v)", err, got)
				}
			case err != nil:
				t.Fatal(err)
			case got != tc.want:
				t.Errorf("search = %+v, want %+v", got, tc.want)
			}
		})
	}
}

var testPlan = Plan{
	Listen:    []netip.Addr{netip.MustParseAddr("2001:db8:1000:100::1"), netip.MustParseAddr("fd12:3456:789a::1"), netip.MustParseAddr("203.0.113.129")},
	Port:      5000,
	Location6: netip.MustParseAddr("2001:db8:1000:100::1"),
	Location4: netip.MustParseAddr("203.0.113.129"),
	UUID:      "2c1b8f46-5bd0-5d8e-9b7f-0d1e2f3a4b5c",
}

func TestAnswers(t *testing.T) {
	d := devicesOf(testPlan)
	tests := []struct {
		name string
		st   string
		want []target
	}{
		{"UDA 1.1 1.3.2: ssdp:all is answered for every device and service", "ssdp:all", allTargets(d)},
		{"UDA 1.1 1.3.2: upnp:rootdevice", "upnp:rootdevice", []target{{"upnp:rootdevice", d.root + "::upnp:rootdevice"}}},
		{"UDA 1.1 1.3.2: a device's UUID", d.wan, []target{{d.wan, d.wan}}},
		{"UDA 1.1 1.3.2: the root device's type", rootDeviceType, []target{{rootDeviceType, d.root + "::" + rootDeviceType}}},
		{"UDA 1.1 1.3.2: a lower version is answered with the version searched for",
			"urn:schemas-upnp-org:device:InternetGatewayDevice:1", []target{{"urn:schemas-upnp-org:device:InternetGatewayDevice:1", d.root + "::urn:schemas-upnp-org:device:InternetGatewayDevice:1"}}},
		{"UDA 1.1 1.3.2: an embedded device's lower version", "urn:schemas-upnp-org:device:WANConnectionDevice:1",
			[]target{{"urn:schemas-upnp-org:device:WANConnectionDevice:1", d.wanConn + "::urn:schemas-upnp-org:device:WANConnectionDevice:1"}}},
		{"UDA 1.1 1.3.2: the service type, from its device", firewallService, []target{{firewallService, d.wanConn + "::" + firewallService}}},
		{"a higher version than the gizmo's is not answered", "urn:schemas-upnp-org:device:InternetGatewayDevice:3", nil},
		{"version 0 is no version", "urn:schemas-upnp-org:device:InternetGatewayDevice:0", nil},
		{"no IPv4 port mapping: WANIPConnection is not offered", "urn:schemas-upnp-org:service:WANIPConnection:1", nil},
		{"another device's UUID", "uuid:00000000-0000-0000-0000-000000000000", nil},
		{"another kind of device", "urn:schemas-upnp-org:device:MediaRenderer:1", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, answers(tc.st, d)); diff != "" {
				t.Errorf("answers (-want +got):\n%s", diff)
			}
		})
	}
	if len(allTargets(d)) != 8 {
		t.Errorf("%d targets; UDA 1.1 1.2.2: 3 for the root device, 2 for each embedded device, 1 per service type = 8", len(allTargets(d)))
	}
	if d.root == d.wan || d.wan == d.wanConn || !strings.HasPrefix(d.root, "uuid:"+testPlan.UUID) {
		t.Errorf("devices %+v: want distinct UDNs, the root's the plan's UUID", d)
	}
	if devicesOf(testPlan) != d {
		t.Error("the embedded devices' UUIDs are not stable")
	}
}

// An answer and an announcement are HTTP over UDP with the headers UDA 1.1
// §1.2.2 and §1.3.3 require.
func TestSearchReplyAndNotify(t *testing.T) {
	d := devicesOf(testPlan)
	tg := target{rootDeviceType, d.root + "::" + rootDeviceType}
	loc := location(testPlan.Location6, testPlan.Port)
	if loc != "http://[2001:db8:1000:100::1]:5000/rootDesc.xml" {
		t.Errorf("location = %s", loc)
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(searchReply(tg, loc, 42, time.Unix(0, 0)))), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Cache-Control": "max-age=1800", "Location": loc, "St": rootDeviceType, "Usn": d.root + "::" + rootDeviceType,
		"Server": serverHeader, "Bootid.upnp.org": "42", "Configid.upnp.org": "1", "Date": "Thu, 01 Jan 1970 00:00:00 GMT",
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("answer's %s = %q, want %q", k, got, v)
		}
	}
	if _, ok := resp.Header["Ext"]; !ok {
		t.Error("answer without EXT")
	}

	for _, alive := range []bool{true, false} {
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(notify(tg, ssdpGroup6Link, alive, loc, 42))))
		if err != nil {
			t.Fatal(err)
		}
		nts, hasLoc := "ssdp:byebye", ""
		if alive {
			nts, hasLoc = "ssdp:alive", loc
		}
		if req.Method != "NOTIFY" || req.Host != "[ff02::c]:1900" || req.Header.Get("Nts") != nts || req.Header.Get("Nt") != rootDeviceType ||
			req.Header.Get("Location") != hasLoc || req.Header.Get("Usn") != tg.USN {
			t.Errorf("NOTIFY %s: %s %s %v", nts, req.Method, req.Host, req.Header)
		}
	}
}

// FuzzParseSearch: any datagram parses or is refused, never a panic, and
// a search found carries an ST and an MX within 0 to 5.
func FuzzParseSearch(f *testing.F) {
	f.Add(msearch("ssdp:all", 2), true)
	f.Add(msearch("urn:schemas-upnp-org:device:InternetGatewayDevice:1", 3), false)
	f.Add([]byte("NOTIFY * HTTP/1.1\r\nNT: upnp:rootdevice\r\n\r\n"), true)
	f.Add([]byte("M-SEARCH * HTTP/1.1\r\nMX: 99999999999999999999\r\n\r\n"), true)
	f.Fuzz(func(t *testing.T, b []byte, multicast bool) {
		s, err := parseSearch(b, multicast)
		if err != nil {
			return
		}
		if s.ST == "" || len(s.ST) > 256 || s.MX < 0 || s.MX > 5 || (multicast && s.MX < 1) || (!multicast && s.MX != 0) {
			t.Fatalf("search %+v (multicast %v)", s, multicast)
		}
		_ = answers(s.ST, devicesOf(testPlan))
	})
}

// A search is answered with every matching target, from a client's share
// of searches; a searcher on a port below 1024 and searches beyond the
// share are dropped and counted.
func TestSearchBounds(t *testing.T) {
	s, err := New(Config{Interface: "lan0", Backend: &fakeBackend{}, Limits: Limits{SearchBurst: 2, Searches: 0.001}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	defer srv.Close()
	cli, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	so := &ssdpSocket{conn: srv, group: ssdpGroup6Link, loc: location(testPlan.Location6, testPlan.Port)}
	d := devicesOf(testPlan)

	s.search(so, msearch("ssdp:all", 1), cli.LocalAddr(), false, d, 1)
	seen := map[string]bool{}
	b := make([]byte, 2048)
	for len(seen) < 8 {
		cli.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := cli.ReadFrom(b)
		if err != nil {
			t.Fatalf("after %d answers: %v", len(seen), err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b[:n])), nil)
		if err != nil {
			t.Fatal(err)
		}
		seen[resp.Header.Get("Usn")] = true
	}
	s.search(so, msearch("upnp:rootdevice", 1), cli.LocalAddr(), false, d, 1) // the burst's second
	s.search(so, msearch("upnp:rootdevice", 1), cli.LocalAddr(), false, d, 1) // beyond it
	privileged := &net.UDPAddr{IP: net.IPv6loopback, Port: 7}
	s.search(so, msearch("ssdp:all", 1), privileged, false, d, 1)
	s.search(so, []byte("M-SEARCH garbage"), cli.LocalAddr(), false, d, 1)
	st := s.Stats()
	want := map[string]uint64{dropRateLimited: 1, dropSourcePort: 1, dropMalformed: 1}
	if diff := cmp.Diff(want, st.SSDPDropped); diff != "" {
		t.Errorf("drops (-want +got):\n%s", diff)
	}
	if st.Searches != 2 {
		t.Errorf("%d searches answered, want 2", st.Searches)
	}
}
