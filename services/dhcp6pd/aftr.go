package dhcp6pd

import (
	"errors"
	"fmt"
	"strings"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

// maxNameWire is the longest domain name in wire format (RFC 1035 §3.1:
// 255 octets, length octets and the root's zero included).
const maxNameWire = 255

// ParseAFTRName parses the tunnel-endpoint-name of OPTION_AFTR_NAME
// (RFC 6334 §3): exactly one fully qualified domain name in DNS wire
// format, uncompressed (RFC 8415 §10), the name of the DS-Lite AFTR. It
// returns the name in lower case without the trailing dot. Labels are
// 1-63 octets of letters, digits and hyphens, not starting or ending with
// a hyphen (RFC 1123 §2.1: the AFTR is a host); nothing may follow the
// root label.
func ParseAFTRName(b []byte) (string, error) {
	if len(b) == 0 {
		return "", errors.New("dhcp6pd: AFTR-Name: empty")
	}
	if len(b) > maxNameWire {
		return "", fmt.Errorf("dhcp6pd: AFTR-Name: %d octets, more than %d (RFC 1035 §3.1)", len(b), maxNameWire)
	}
	var labels []string
	for i := 0; ; {
		if i >= len(b) {
			return "", errors.New("dhcp6pd: AFTR-Name: no root label (not fully qualified)")
		}
		n := int(b[i])
		i++
		if n == 0 {
			if i != len(b) {
				return "", fmt.Errorf("dhcp6pd: AFTR-Name: %d octets after the name", len(b)-i)
			}
			break
		}
		if n > 63 {
			// Also a compression pointer (0xc0), which RFC 8415 §10
			// rules out.
			return "", fmt.Errorf("dhcp6pd: AFTR-Name: label length %d over 63", n)
		}
		if i+n > len(b) {
			return "", errors.New("dhcp6pd: AFTR-Name: label runs past the option")
		}
		label := strings.ToLower(string(b[i : i+n]))
		if err := checkLabel(label); err != nil {
			return "", err
		}
		labels = append(labels, label)
		i += n
	}
	if len(labels) == 0 {
		return "", errors.New("dhcp6pd: AFTR-Name: the root, not a host")
	}
	return strings.Join(labels, "."), nil
}

func checkLabel(l string) error {
	if l[0] == '-' || l[len(l)-1] == '-' {
		return fmt.Errorf("dhcp6pd: AFTR-Name: label %q starts or ends with a hyphen", l)
	}
	for _, c := range []byte(l) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("dhcp6pd: AFTR-Name: label %q has %q, not a host name character", l, c)
		}
	}
	return nil
}

// aftrName is the AFTR-Name of a Reply: "" when it names none. A malformed
// option is an error, and the Reply's delegation stands without it
// (RFC 6334 §5: a client that cannot use the option goes on without
// DS-Lite).
func aftrName(msg *dhcpv6.Message) (string, error) {
	o := msg.Options.GetOne(dhcpv6.OptionAFTRName)
	if o == nil {
		return "", nil
	}
	return ParseAFTRName(o.ToBytes())
}
