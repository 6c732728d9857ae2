// Package ratshark captures a Router Advertisement off the wire and reads it
// back through tshark's decoder, so that tests compare what a person reading
// a capture would see with what the gizmo means to advertise. Tests only.
package ratshark

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"golang.org/x/sys/unix"
)

// Socket opens an AF_PACKET socket for every IPv6 frame on ifname in the
// calling thread's network namespace.
func Socket(ifname string) (int, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return -1, err
	}
	proto := htons(unix.ETH_P_IPV6)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(proto))
	if err != nil {
		return -1, err
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Read returns the first Ethernet frame on fd that carries an ICMPv6 Router
// Advertisement right after the IPv6 header (the gizmo sends no extension
// headers), from src unless src is nil, waiting at most wait for it.
func Read(t testing.TB, fd int, src net.HardwareAddr, wait time.Duration) []byte {
	t.Helper()
	tv := unix.NsecToTimeval(wait.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 65536)
	for {
		n, _, err := unix.Recvfrom(fd, b, 0)
		if err != nil {
			t.Fatalf("no RA captured: %v", err)
		}
		const eth, ip6 = 14, 40
		fromSrc := src == nil || bytes.Equal(b[6:12], src)
		if n > eth+ip6 && fromSrc && b[eth+6] == unix.IPPROTO_ICMPV6 && b[eth+ip6] == 134 {
			return append([]byte(nil), b[:n]...)
		}
	}
}

// Decode writes frame to a pcap file and returns the lines of tshark's
// verbose ICMPv6 tree that carry protocol values (see Lines).
func Decode(ctx context.Context, t testing.TB, frame []byte) []string {
	t.Helper()
	pcap := filepath.Join(t.TempDir(), "ra.pcap")
	writePcap(t, pcap, frame)
	out, err := exec.CommandContext(ctx, "tshark", "-r", pcap, "-V", "-O", "icmpv6").CombinedOutput()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	return Lines(string(out))
}

// writePcap writes frame as the only packet of a classic pcap file with
// Ethernet link type.
func writePcap(t testing.TB, path string, frame []byte) {
	t.Helper()
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, 0xa1b2c3d4) // magic, microseconds
	b = binary.LittleEndian.AppendUint16(b, 2)          // version 2.4
	b = binary.LittleEndian.AppendUint16(b, 4)
	b = binary.LittleEndian.AppendUint32(b, 0)     // thiszone
	b = binary.LittleEndian.AppendUint32(b, 0)     // sigfigs
	b = binary.LittleEndian.AppendUint32(b, 65535) // snaplen
	b = binary.LittleEndian.AppendUint32(b, 1)     // LINKTYPE_ETHERNET
	now := time.Now()
	b = binary.LittleEndian.AppendUint32(b, uint32(now.Unix()))
	b = binary.LittleEndian.AppendUint32(b, uint32(now.Nanosecond()/1000))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(frame)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(frame)))
	b = append(b, frame...)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Lines keeps the lines of tshark's ICMPv6 tree that carry protocol values:
// bit fields by name and value, without the bits, and without option
// types, lengths, reserved fields and the checksum, which only repeat the
// encoding.
func Lines(out string) []string {
	var keep []string
	in := false
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "Internet Control Message Protocol v6") {
			in = true
			continue
		}
		if !in {
			continue
		}
		s := strings.TrimSpace(line)
		if _, field, ok := strings.Cut(s, " = "); ok {
			s = field
		}
		switch {
		case s == "",
			strings.HasPrefix(s, "Checksum"), strings.HasPrefix(s, "[Checksum"),
			strings.HasPrefix(s, "Code:"), strings.HasPrefix(s, "Length:"),
			strings.HasPrefix(s, "Reserved"),
			strings.HasPrefix(s, "Type:") && !strings.HasPrefix(s, "Type: Router Advertisement"):
			continue
		}
		keep = append(keep, s)
	}
	return keep
}

// PIO is one Prefix Information option as tshark prints it: Net is the
// prefix's address part ("2001:db8:1000::"), lifetimes in seconds or a
// placeholder the test put in their place.
type PIO struct {
	Net              string
	Valid, Preferred string
}

// RA is what the gizmo advertises on a LAN (RFC 4861 §4.2 with the options
// of RFC 4191, RFC 8106 and RFC 8781), in the text tshark prints for it.
// Addresses and prefixes are strings so that a test can put placeholders
// in place of values it checks on their own.
type RA struct {
	MAC            string // the router's link-layer address
	RouterLifetime int
	MTU            int
	LAN, ULA       PIO    // the /64s, in this order
	ULARoute       string // the ULA /48's address part (RFC 4191 RIO)
	RouteLifetime  int
	Pref64         string // the NAT64 /96's address part (RIO and PREF64)
	RDNSS          string
	DNSLifetime    int // of RDNSS and DNSSL (RFC 8106 §5.1)
	Domain         string
	Pref64Scaled   int // PREF64's lifetime in units of 8 s (RFC 8781 §4)
}

var raText = template.Must(template.New("ra").Parse(`Type: Router Advertisement (134)
Cur hop limit: 64
Flags: 0x40, Other configuration, Prf (Default Router Preference): Medium
Managed address configuration: Not set
Other configuration: Set
Home Agent: Not set
Prf (Default Router Preference): Medium (0)
Proxy: Not set
Router lifetime (s): {{.RouterLifetime}}
Reachable time (ms): 0
Retrans timer (ms): 0
ICMPv6 Option (Source link-layer address : {{.MAC}})
Link-layer address: {{.MAC}} ({{.MAC}})
ICMPv6 Option (MTU : {{.MTU}})
MTU: {{.MTU}}
{{range .PIOs}}ICMPv6 Option (Prefix information : {{.Net}}/64)
Prefix Length: 64
Flag: 0xc0, On-link flag(L), Autonomous address-configuration flag(A)
On-link flag(L): Set
Autonomous address-configuration flag(A): Set
Router address flag(R): Not set
Valid Lifetime: {{.Valid}}
Preferred Lifetime: {{.Preferred}}
Prefix: {{.Net}}
{{end}}ICMPv6 Option (Route Information : Medium {{.ULARoute}}/48)
Prefix Length: 48
Flag: 0x00, Route Preference: Medium
Route Preference: Medium (0)
Route Lifetime: {{.RouteLifetime}}
Prefix: {{.ULARoute}}
ICMPv6 Option (Route Information : Medium {{.Pref64}}/96)
Prefix Length: 96
Flag: 0x00, Route Preference: Medium
Route Preference: Medium (0)
Route Lifetime: {{.RouteLifetime}}
Prefix: {{.Pref64}}
ICMPv6 Option (Recursive DNS Server {{.RDNSS}})
Lifetime: {{.DNSLifetime}}
Recursive DNS Servers: {{.RDNSS}}
ICMPv6 Option (DNS Search List Option {{.Domain}})
Lifetime: {{.DNSLifetime}}
Domain Names: {{.Domain}}
Padding
ICMPv6 Option (PREF64 Option)
Scaled Lifetime: {{.Pref64Scaled}}
PLC (Prefix Length Code): 96 bits prefix length (0x0)
Prefix: {{.Pref64}}`))

// Lines returns the lines Lines should find in tshark's decoding of ra.
func (ra RA) Lines() []string {
	var b strings.Builder
	data := struct {
		RA
		PIOs []PIO
	}{ra, []PIO{ra.LAN, ra.ULA}}
	if err := raText.Execute(&b, data); err != nil {
		panic(err) // the template and RA are fixed: a bug here, not bad input
	}
	return strings.Split(b.String(), "\n")
}
