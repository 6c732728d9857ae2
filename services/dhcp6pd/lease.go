package dhcp6pd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

// Lease is one delegated prefix with absolute deadlines. Lifetimes count from
// the moment the Reply arrived (RFC 8415 §18.2.10.1), so consumers compute
// what is left when they use it.
type Lease struct {
	Prefix         netip.Prefix `json:"prefix"`
	PreferredUntil time.Time    `json:"preferred_until"`
	ValidUntil     time.Time    `json:"valid_until"`
	// T1 is when the client sends Renew, T2 when it sends Rebind
	// (RFC 8415 §18.2.4, §18.2.5).
	T1 time.Time `json:"t1"`
	T2 time.Time `json:"t2"`
	// DNS are the recursive name servers from OPTION_DNS_SERVERS (RFC 3646).
	DNS []netip.Addr `json:"dns,omitempty"`
	// NTP are the time servers from OPTION_NTP_SERVER's address suboption
	// (RFC 5908 §4.1), then OPTION_SNTP_SERVERS (RFC 4075); NTPNames those
	// of its FQDN suboption (RFC 5908 §4.3).
	NTP      []netip.Addr `json:"ntp,omitempty"`
	NTPNames []string     `json:"ntp_names,omitempty"`
	// AFTRName is the DS-Lite AFTR the server names in OPTION_AFTR_NAME
	// (RFC 6334 §3); empty when it names none, or the option was
	// malformed (counted in Stats.MalformedAFTRName).
	AFTRName string `json:"aftr_name,omitempty"`
	// ServerID is the DUID of the server that granted the lease; Renew is
	// addressed to it (RFC 8415 §18.2.4).
	ServerID []byte `json:"server_id"`
	// Acquired is when the Reply that granted or last extended the lease
	// arrived.
	Acquired time.Time `json:"acquired"`
}

// Invalid lease reasons, used as the label of Stats.InvalidLeases.
const (
	ReasonMissingIAPD        = "missing-ia-pd"
	ReasonMissingPrefix      = "missing-prefix"
	ReasonZeroValid          = "zero-valid-lifetime"
	ReasonPreferredOverValid = "preferred-exceeds-valid"
	ReasonT1OverT2           = "t1-exceeds-t2"
	ReasonPrefixTooLong      = "prefix-longer-than-64"
	ReasonPrefixTooShort     = "prefix-shorter-than-32"
	ReasonNotGlobal          = "prefix-not-global-unicast"
	ReasonULA                = "prefix-unique-local"
	ReasonMissingServerID    = "missing-server-id"
)

// InvalidLeaseError says why a Reply or Advertise carried no usable lease.
type InvalidLeaseError struct {
	Reason string
	Detail string
}

func (e *InvalidLeaseError) Error() string {
	if e.Detail == "" {
		return "invalid lease: " + e.Reason
	}
	return "invalid lease: " + e.Reason + ": " + e.Detail
}

// StatusError is a non-success status code from the server, either at the
// top level of the message or inside the IA_PD (RFC 8415 §21.13).
type StatusError struct {
	Code    iana.StatusCode
	Message string
	InIA    bool
}

func (e *StatusError) Error() string {
	where := "message"
	if e.InIA {
		where = "IA_PD"
	}
	return fmt.Sprintf("server status %s (%d) in %s: %q", e.Code, uint16(e.Code), where, e.Message)
}

func invalid(reason, format string, args ...any) error {
	return &InvalidLeaseError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// infinity is the lifetime value 0xffffffff (RFC 8415 §7.7).
const infinity = time.Duration(0xffffffff) * time.Second

// farFuture stands for "never" so that timers and comparisons need no special
// case for infinite lifetimes.
var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

func deadline(now time.Time, d time.Duration) time.Time {
	if d >= infinity {
		return farFuture
	}
	return now.Add(d)
}

// parseLease extracts the lease for IA iaid from a Reply or Advertise that
// arrived at now. It applies the client-side validity rules of RFC 8415:
//   - §21.21: an IA_PD with T1 > T2 (both non-zero) is discarded;
//   - §21.22: a prefix with preferred > valid lifetime is discarded;
//   - a prefix with valid lifetime 0 is withdrawn (§18.2.10.1), not a lease;
//   - RFC 7084 WPD-2 and our LAN model need at least one /64, so a prefix
//     longer than /64 is useless;
//   - only a global unicast prefix of /32 to /64 is a delegation
//     (DelegationPolicy).
//
// When the IA_PD holds several prefixes, the one equal to prefer (the lease
// being extended) wins, otherwise the first usable one. Withdrawn lists the
// prefixes the server explicitly gave valid lifetime 0.
func parseLease(msg *dhcpv6.Message, iaid [4]byte, prefer netip.Prefix, now time.Time) (l Lease, withdrawn []netip.Prefix, err error) {
	if st := msg.Options.Status(); st != nil && st.StatusCode != iana.StatusSuccess {
		return Lease{}, nil, &StatusError{Code: st.StatusCode, Message: st.StatusMessage}
	}
	sid := msg.Options.ServerID()
	if sid == nil {
		return Lease{}, nil, invalid(ReasonMissingServerID, "")
	}
	var ia *dhcpv6.OptIAPD
	for _, o := range msg.Options.IAPD() {
		if o.IaId == iaid {
			ia = o
			break
		}
	}
	if ia == nil {
		return Lease{}, nil, invalid(ReasonMissingIAPD, "no IA_PD with IAID %x", iaid)
	}
	if st := ia.Options.Status(); st != nil && st.StatusCode != iana.StatusSuccess {
		return Lease{}, nil, &StatusError{Code: st.StatusCode, Message: st.StatusMessage, InIA: true}
	}
	if ia.T1 != 0 && ia.T2 != 0 && ia.T1 > ia.T2 {
		return Lease{}, nil, invalid(ReasonT1OverT2, "T1 %v > T2 %v", ia.T1, ia.T2)
	}
	var (
		chosen    *dhcpv6.OptIAPrefix
		chosenPfx netip.Prefix
		firstErr  error
	)
	for _, p := range ia.Options.Prefixes() {
		pfx, perr := checkPrefix(p)
		if perr != nil {
			if ie, ok := perr.(*InvalidLeaseError); ok && ie.Reason == ReasonZeroValid && pfx.IsValid() {
				withdrawn = append(withdrawn, pfx)
			}
			if firstErr == nil {
				firstErr = perr
			}
			continue
		}
		if chosen == nil || pfx == prefer {
			chosen, chosenPfx = p, pfx
		}
	}
	if chosen == nil {
		if firstErr == nil {
			firstErr = invalid(ReasonMissingPrefix, "IA_PD without IA Prefix")
		}
		return Lease{}, withdrawn, firstErr
	}

	// RFC 8415 §21.21 / §18.2.4: when the server leaves T1 and T2 to the
	// client, use 0.5 and 0.8 times the shortest preferred lifetime.
	t1, t2 := ia.T1, ia.T2
	if t1 == 0 || t2 == 0 {
		base := chosen.PreferredLifetime
		if base == 0 || base >= infinity {
			base = chosen.ValidLifetime
		}
		if base >= infinity {
			t1, t2 = infinity, infinity
		} else {
			if t1 == 0 {
				t1 = base / 2
			}
			if t2 == 0 {
				t2 = base / 10 * 8 // base*8 would overflow for long lifetimes
			}
			if t1 > t2 {
				t1 = t2
			}
		}
	}
	l = Lease{
		Prefix:         chosenPfx,
		PreferredUntil: deadline(now, chosen.PreferredLifetime),
		ValidUntil:     deadline(now, chosen.ValidLifetime),
		T1:             deadline(now, t1),
		T2:             deadline(now, t2),
		ServerID:       sid.ToBytes(),
		Acquired:       now,
	}
	// T1/T2 beyond the valid lifetime would let the lease lapse before the
	// client tries to extend it.
	if l.T2.After(l.ValidUntil) {
		l.T2 = l.ValidUntil
	}
	if l.T1.After(l.T2) {
		l.T1 = l.T2
	}
	for _, ip := range msg.Options.DNS() {
		if a, ok := netip.AddrFromSlice(ip); ok {
			l.DNS = append(l.DNS, a.Unmap())
		}
	}
	l.NTP, l.NTPNames = timeServers(msg)
	// A malformed AFTR-Name is left out; handleReply counts it.
	l.AFTRName, _ = aftrName(msg)
	return l, withdrawn, nil
}

// dropBadTimeOptions returns the message without its top-level
// OPTION_NTP_SERVER and OPTION_SNTP_SERVERS options that do not parse, and
// how many it dropped. RFC 5908 and RFC 4075 are optional information: a
// client that cannot use one ignores it rather than the whole Reply, which
// carries the delegation. Anything else wrong leaves the message as it was.
func dropBadTimeOptions(raw []byte) ([]byte, int) {
	const header = 4 // msg-type and transaction-id (RFC 8415 §8)
	if len(raw) < header {
		return raw, 0
	}
	out := append(make([]byte, 0, len(raw)), raw[:header]...)
	dropped := 0
	for b := raw[header:]; len(b) > 0; {
		if len(b) < 4 {
			return raw, 0
		}
		code := dhcpv6.OptionCode(binary.BigEndian.Uint16(b))
		n := int(binary.BigEndian.Uint16(b[2:]))
		if len(b) < 4+n {
			return raw, 0
		}
		if code == dhcpv6.OptionNTPServer || code == dhcpv6.OptionSNTPServerList {
			if _, err := dhcpv6.ParseOption(code, b[4:4+n]); err != nil {
				dropped++
				b = b[4+n:]
				continue
			}
		}
		out = append(out, b[:4+n]...)
		b = b[4+n:]
	}
	return out, dropped
}

// timeServers extracts the NTP servers a Reply names. RFC 5908 §4: the
// address suboption is a unicast address (a multicast suboption is for
// clients that listen to multicast NTP, which the gizmo does not); RFC 4075
// is its predecessor, used when a server still sends it. Duplicates,
// unspecified, loopback and multicast addresses are dropped.
func timeServers(msg *dhcpv6.Message) (addrs []netip.Addr, names []string) {
	add := func(ip net.IP) {
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			return
		}
		a = a.Unmap()
		if a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() || slices.Contains(addrs, a) {
			return
		}
		addrs = append(addrs, a)
	}
	for _, ip := range msg.Options.NTPServers() {
		add(ip)
	}
	for _, ip := range msg.Options.SNTP() {
		add(ip)
	}
	for _, o := range msg.Options.Get(dhcpv6.OptionNTPServer) {
		ntp, ok := o.(*dhcpv6.OptNTPServer)
		if !ok {
			continue
		}
		for _, so := range ntp.Suboptions {
			fqdn, ok := so.(*dhcpv6.NTPSuboptionSrvFQDN)
			if !ok {
				continue
			}
			for _, l := range fqdn.Labels.Labels {
				if name := strings.TrimSuffix(l, "."); name != "" && !slices.Contains(names, name) {
					names = append(names, name)
				}
			}
		}
	}
	return addrs, names
}

// checkPrefix validates one IA Prefix option. The returned prefix is valid
// whenever the option carried one, even if the option is rejected, so that
// callers can tell which prefix was withdrawn.
func checkPrefix(p *dhcpv6.OptIAPrefix) (netip.Prefix, error) {
	if p.Prefix == nil {
		return netip.Prefix{}, invalid(ReasonMissingPrefix, "prefix length 0")
	}
	addr, ok := netip.AddrFromSlice(p.Prefix.IP)
	if !ok || !addr.Is6() || addr.Is4In6() {
		return netip.Prefix{}, invalid(ReasonNotGlobal, "%v", p.Prefix.IP)
	}
	bits, _ := p.Prefix.Mask.Size()
	pfx := netip.PrefixFrom(addr, bits).Masked()
	if p.ValidLifetime == 0 {
		return pfx, invalid(ReasonZeroValid, "%s", pfx)
	}
	if p.PreferredLifetime > p.ValidLifetime {
		return pfx, invalid(ReasonPreferredOverValid, "%s: preferred %v > valid %v", pfx, p.PreferredLifetime, p.ValidLifetime)
	}
	return pfx, DelegationPolicy(pfx)
}

// MinDelegatedBits is the shortest delegation the client accepts. RFC 8415
// §18.2.10.1 leaves it to the client which prefixes it uses, and RFC 7084
// WPD-2/WPD-3 expect a CE router to be delegated a /48 to /64; a /32 is what
// a regional registry allocates to a whole ISP (RFC 6177 §1), so a shorter
// one can only be a mistake or an attack. It would have the gizmo claim
// (unreachable routes, firewall sets) a block far larger than its own.
const MinDelegatedBits = 32

// DelegationPolicy refuses prefixes that can not be a home's delegation
// (the daemon's view of the LAN applies it too):
// longer than /64 (SLAAC needs a /64 on the LAN: RFC 7084 WPD-2, RFC 4862
// §5.5.3), shorter than MinDelegatedBits, or not global unicast (RFC 4291
// §2.4): link-local, multicast, loopback, unspecified, and unique local
// addresses (RFC 4193 §1: a ULA is site-local by intent and never comes
// from an ISP; the gizmo has its own for management).
func DelegationPolicy(pfx netip.Prefix) error {
	a := pfx.Addr()
	switch {
	case pfx.Bits() > 64:
		return invalid(ReasonPrefixTooLong, "%s", pfx)
	case a.IsPrivate():
		return invalid(ReasonULA, "%s", pfx)
	case !a.IsGlobalUnicast():
		return invalid(ReasonNotGlobal, "%s", pfx)
	case pfx.Bits() < MinDelegatedBits:
		return invalid(ReasonPrefixTooShort, "%s", pfx)
	}
	return nil
}

// reasonOf returns the Stats label for err.
func reasonOf(err error) string {
	var ie *InvalidLeaseError
	if errors.As(err, &ie) {
		return ie.Reason
	}
	return "other"
}
