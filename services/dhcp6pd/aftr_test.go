package dhcp6pd

import (
	"strings"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

func TestParseAFTRName(t *testing.T) {
	long := make([]byte, 0, 300)
	for range 4 {
		long = append(long, 63)
		for range 63 {
			long = append(long, 'a')
		}
	}
	long = append(long, 0)
	for _, c := range []struct {
		name string
		wire []byte
		want string
	}{
		{"RFC 6334 §3: one FQDN in DNS wire format", []byte("\x04aftr\x07example\x04test\x00"), "aftr.example.test"},
		{"upper case is the same name (RFC 4343)", []byte("\x04AFTR\x07Example\x04TEST\x00"), "aftr.example.test"},
		{"a hyphen inside a label", []byte("\x06aftr-1\x03isp\x00"), "aftr-1.isp"},
		{"empty option", []byte{}, ""},
		{"RFC 8415 §10: not fully qualified (no root label)", []byte("\x04aftr"), ""},
		{"the root alone is no host", []byte{0}, ""},
		{"RFC 8415 §10: no compression pointers", []byte("\x04aftr\xc0\x0c"), ""},
		{"a label past the option's end", []byte("\x09aftr\x00"), ""},
		{"bytes after the root: a second name", []byte("\x04aftr\x00\x03isp\x00"), ""},
		{"RFC 1035 §3.1: over 255 octets", long, ""},
		{"RFC 1123 §2.1: a space is no host name character", []byte("\x05af tr\x00"), ""},
		{"a label starting with a hyphen", []byte("\x05-aftr\x00"), ""},
		{"a NUL inside a label", []byte("\x05af\x00tr\x00"), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseAFTRName(c.wire)
			if got != c.want || (err == nil) != (c.want != "") {
				t.Errorf("ParseAFTRName(%q) = %q, %v; want %q", c.wire, got, err, c.want)
			}
		})
	}
}

// TestLeaseAFTRName checks that the name reaches the lease, and that a
// malformed one costs only itself.
func TestLeaseAFTRName(t *testing.T) {
	for _, c := range []struct {
		name string
		opt  []byte
		want string
	}{
		{"RFC 6334: the Reply's AFTR-Name is the lease's", []byte("\x04aftr\x07example\x04test\x00"), "aftr.example.test"},
		{"RFC 6334 §5: a malformed AFTR-Name leaves the delegation", []byte("\x04aftr"), ""},
		{"no AFTR-Name", nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := replyWith(testIAPD())
			if c.opt != nil {
				m.AddOption(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionAFTRName, OptionData: c.opt})
			}
			l, err := parseWire(t, m)
			if err != nil {
				t.Fatal(err)
			}
			if l.AFTRName != c.want {
				t.Errorf("AFTRName %q, want %q", l.AFTRName, c.want)
			}
		})
	}
}

// FuzzParseAFTRName: any bytes give a name or an error, never a panic, and
// a name parses back from its own wire format.
func FuzzParseAFTRName(f *testing.F) {
	f.Add([]byte("\x04aftr\x07example\x04test\x00"))
	f.Add([]byte("\x04aftr\xc0\x0c"))
	f.Add([]byte{0})
	f.Add([]byte{63})
	f.Fuzz(func(t *testing.T, b []byte) {
		name, err := ParseAFTRName(b)
		if err != nil {
			return
		}
		if name == "" || len(name) > 253 {
			t.Fatalf("name %q from %q", name, b)
		}
		var wire []byte
		for _, l := range strings.Split(name, ".") {
			wire = append(append(wire, byte(len(l))), l...)
		}
		wire = append(wire, 0)
		if again, err := ParseAFTRName(wire); err != nil || again != name {
			t.Fatalf("%q does not parse back: %q, %v", name, again, err)
		}
	})
}
