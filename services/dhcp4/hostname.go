package dhcp4

import (
	"strings"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// clientHostname returns the name the client announces, reduced to one DNS
// label that is safe to publish under home.arpa: option 81 (Client FQDN,
// RFC 4702) wins over option 12 (Host Name, RFC 2132 §3.14) because a client
// that sends both means the FQDN. Anything unusable gives "".
func clientHostname(opts dhcpv4.Options) string {
	if v := opts.Get(dhcpv4.OptionFQDN); v != nil {
		if h := fqdnFirstLabel(v); h != "" {
			return h
		}
	}
	if v := opts.Get(dhcpv4.OptionHostName); v != nil {
		name, _, _ := strings.Cut(string(v), ".")
		return sanitizeLabel(name)
	}
	return ""
}

// fqdnFirstLabel decodes the Domain Name field of option 81 (RFC 4702 §2):
// one octet of flags and two obsolete RCODE octets, then the name, in DNS
// wire format when the E flag is set (§2.3.1) and ASCII otherwise (deprecated
// but still sent by old clients).
func fqdnFirstLabel(v []byte) string {
	const flagE = 0x04
	if len(v) < 4 {
		return ""
	}
	flags, name := v[0], v[3:]
	if flags&flagE == 0 {
		label, _, _ := strings.Cut(string(name), ".")
		return sanitizeLabel(label)
	}
	n := int(name[0])
	// A label is at most 63 octets (RFC 1035 §2.3.4); 0xC0 and up would be a
	// compression pointer, which RFC 4702 §2.3.1 forbids here.
	if n == 0 || n > 63 || 1+n > len(name) {
		return ""
	}
	return sanitizeLabel(string(name[1 : 1+n]))
}

// sanitizeLabel lower-cases s and keeps it only if it is a valid host name
// label (RFC 1123 §2.1: letters, digits and inner hyphens, 1..63 octets).
// Spaces and underscores, common in device names, become hyphens.
func sanitizeLabel(s string) string {
	s = strings.TrimRight(s, "\x00")
	if len(s) == 0 || len(s) > 63 {
		return ""
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == '-', c == ' ', c == '_':
			c = '-'
		default:
			return ""
		}
		b = append(b, c)
	}
	if b[0] == '-' || b[len(b)-1] == '-' {
		return ""
	}
	return string(b)
}
