package upnp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// SSDP (UDA 1.1 §1).
const (
	ssdpPort = 1900
	// maxAge is CACHE-CONTROL's max-age: a control point forgets the
	// gizmo this long after the last announcement it heard. UDA 1.1
	// §1.2.2 asks for at least 1800 s.
	maxAge = 1800
	// announceEvery is how often ssdp:alive is sent again: less than half
	// of maxAge (UDA 1.1 §1.2.2), so that one lost round is not noticed.
	announceEvery = 15 * time.Minute
	// maxSearch bounds an M-SEARCH datagram; real ones are about 150
	// bytes.
	maxSearch = 8 << 10
	// maxDelay caps the random answer delay. UDA 1.1 §1.3.3 asks for a
	// delay between 0 and MX to spread the answers of many devices; the
	// gizmo is the one device answering, and clients such as miniupnpc
	// wait MX seconds in all.
	maxDelay = time.Second
)

var (
	ssdpGroup6Link = netip.MustParseAddr("ff02::c") // link-local scope, UDA 1.1 §1.1.2
	ssdpGroup6Site = netip.MustParseAddr("ff05::c") // site-local scope; joined on the LAN only
	ssdpGroup4     = netip.MustParseAddr("239.255.255.250")
)

// serverHeader is the SERVER header: OS/version UPnP/1.1 product/version
// (UDA 1.1 §1.2.2).
const serverHeader = "Linux UPnP/1.1 gizmo/1"

// search is an M-SEARCH request (UDA 1.1 §1.3.2).
type search struct {
	ST string
	// MX is how many seconds the searcher waits for answers; zero for a
	// unicast search, which is answered at once.
	MX int
}

// SSDP drop reasons (Stats.SSDPDropped).
const (
	dropMalformed   = "malformed"
	dropNotSearch   = "not_search"
	dropRateLimited = "rate_limited"
	dropQueueFull   = "queue_full"
	dropSourcePort  = "source_port"
	dropNoLocation  = "no_location"
)

// errNotSearch: a well-formed SSDP message that is not an M-SEARCH
// (NOTIFY from other devices, answers to other searchers).
var errNotSearch = errors.New("upnp: not an M-SEARCH")

// parseSearch parses an M-SEARCH datagram.
func parseSearch(b []byte, multicast bool) (search, error) {
	if len(b) > maxSearch {
		return search{}, fmt.Errorf("upnp: M-SEARCH of %d bytes", len(b))
	}
	if bytes.HasPrefix(b, []byte("NOTIFY ")) || bytes.HasPrefix(b, []byte("HTTP/")) {
		return search{}, errNotSearch
	}
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b)))
	if err != nil {
		return search{}, fmt.Errorf("upnp: M-SEARCH: %w", err)
	}
	if req.Method != "M-SEARCH" {
		return search{}, errNotSearch
	}
	if req.RequestURI != "*" {
		return search{}, fmt.Errorf("upnp: M-SEARCH for %q, want *", req.RequestURI)
	}
	if man := req.Header.Get("Man"); man != `"ssdp:discover"` {
		return search{}, fmt.Errorf("upnp: M-SEARCH with MAN %q", man)
	}
	st := strings.TrimSpace(req.Header.Get("St"))
	if st == "" || len(st) > 256 {
		return search{}, fmt.Errorf("upnp: M-SEARCH with ST %q", st)
	}
	s := search{ST: st}
	if mx := req.Header.Get("Mx"); mx != "" {
		n, err := strconv.Atoi(strings.TrimSpace(mx))
		if err != nil || n < 0 {
			return search{}, fmt.Errorf("upnp: M-SEARCH with MX %q", mx)
		}
		// UDA 1.1 §1.3.2: values above 5 are treated as 5.
		s.MX = min(n, 5)
	}
	if multicast && s.MX < 1 {
		// UDA 1.1 §1.3.2: a multicast search must carry MX >= 1.
		return search{}, fmt.Errorf("upnp: multicast M-SEARCH without MX")
	}
	if !multicast {
		s.MX = 0
	}
	return s, nil
}

// target is one (ST or NT, USN) pair the gizmo answers or announces.
type target struct {
	ST, USN string
}

// allTargets are the announcements of the device tree (UDA 1.1 §1.2.2):
// the root device, each device's UUID and type, and the service type.
func allTargets(d devices) []target {
	return []target{
		{"upnp:rootdevice", d.root + "::upnp:rootdevice"},
		{d.root, d.root},
		{rootDeviceType, d.root + "::" + rootDeviceType},
		{d.wan, d.wan},
		{wanDeviceType, d.wan + "::" + wanDeviceType},
		{d.wanConn, d.wanConn},
		{wanConnDeviceType, d.wanConn + "::" + wanConnDeviceType},
		{firewallService, d.wanConn + "::" + firewallService},
	}
}

// answers are the targets that answer a search for st (UDA 1.1 §1.3.2).
// A search for a type of a lower version than the gizmo's is answered
// with the version searched for (UDA 1.1 §1.3.2: a device answers for
// every version it is backwards compatible with).
func answers(st string, d devices) []target {
	all := allTargets(d)
	if st == "ssdp:all" {
		return all
	}
	for _, t := range all {
		if t.ST == st {
			return []target{t}
		}
		if typ, v, ok := splitVersion(t.ST); ok {
			if styp, sv, ok := splitVersion(st); ok && styp == typ && sv >= 1 && sv < v {
				udn, _, _ := strings.Cut(t.USN, "::")
				return []target{{st, udn + "::" + st}}
			}
		}
	}
	return nil
}

// splitVersion splits "urn:...:device:X:2" into its type and version.
func splitVersion(urn string) (string, int, bool) {
	if !strings.HasPrefix(urn, "urn:") {
		return "", 0, false
	}
	i := strings.LastIndexByte(urn, ':')
	v, err := strconv.Atoi(urn[i+1:])
	if err != nil {
		return "", 0, false
	}
	return urn[:i], v, true
}

// location is the description's URL at addr.
func location(addr netip.Addr, port uint16) string {
	return "http://" + net.JoinHostPort(addr.String(), strconv.Itoa(int(port))) + descPath
}

// searchReply is the unicast answer to an M-SEARCH (UDA 1.1 §1.3.3).
func searchReply(t target, loc string, bootID uint32, now time.Time) []byte {
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 200 OK\r\n")
	fmt.Fprintf(&b, "CACHE-CONTROL: max-age=%d\r\n", maxAge)
	fmt.Fprintf(&b, "DATE: %s\r\n", now.UTC().Format(http.TimeFormat))
	b.WriteString("EXT:\r\n")
	fmt.Fprintf(&b, "LOCATION: %s\r\n", loc)
	fmt.Fprintf(&b, "SERVER: %s\r\n", serverHeader)
	fmt.Fprintf(&b, "ST: %s\r\n", t.ST)
	fmt.Fprintf(&b, "USN: %s\r\n", t.USN)
	fmt.Fprintf(&b, "BOOTID.UPNP.ORG: %d\r\n", bootID)
	fmt.Fprintf(&b, "CONFIGID.UPNP.ORG: %d\r\n", configID)
	b.WriteString("\r\n")
	return b.Bytes()
}

// notify is an announcement (UDA 1.1 §1.2.2 alive, §1.2.3 byebye) to the
// multicast group; loc is ignored for byebye.
func notify(t target, group netip.Addr, alive bool, loc string, bootID uint32) []byte {
	var b bytes.Buffer
	b.WriteString("NOTIFY * HTTP/1.1\r\n")
	fmt.Fprintf(&b, "HOST: %s\r\n", net.JoinHostPort(group.String(), strconv.Itoa(ssdpPort)))
	if alive {
		fmt.Fprintf(&b, "CACHE-CONTROL: max-age=%d\r\n", maxAge)
		fmt.Fprintf(&b, "LOCATION: %s\r\n", loc)
		fmt.Fprintf(&b, "SERVER: %s\r\n", serverHeader)
	}
	fmt.Fprintf(&b, "NT: %s\r\n", t.ST)
	if alive {
		b.WriteString("NTS: ssdp:alive\r\n")
	} else {
		b.WriteString("NTS: ssdp:byebye\r\n")
	}
	fmt.Fprintf(&b, "USN: %s\r\n", t.USN)
	fmt.Fprintf(&b, "BOOTID.UPNP.ORG: %d\r\n", bootID)
	fmt.Fprintf(&b, "CONFIGID.UPNP.ORG: %d\r\n", configID)
	b.WriteString("\r\n")
	return b.Bytes()
}
