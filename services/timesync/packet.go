package timesync

import (
	"crypto/md5"
	"encoding/binary"
	"errors"
	"math"
	"net/netip"
	"time"
)

// The NTP packet header (RFC 5905 §7.3, Figure 8): 48 octets, optionally
// followed by extension fields and a MAC, which this server ignores.
const headerLen = 48

// Modes of the first octet (RFC 5905 §7.3).
const (
	modeClient = 3
	modeServer = 4
)

// Leap indicator values (RFC 5905 §7.3).
const (
	leapNone  = 0
	leapAlarm = 3 // clock unsynchronized
)

// maxStratum is "unsynchronized" in a packet (RFC 5905 §7.3, Figure 11).
const maxStratum = 16

// precision is log2 seconds of the clock's resolution: Linux reads the
// clock to the nanosecond, but a Pi's reading costs about a microsecond.
const precision = -20

// Reasons a request gets no answer; the keys of ServerStats.Dropped.
const (
	DropShort   = "short"      // fewer than 48 octets
	DropVersion = "version"    // version 0 or above 4 (NTPv5 is a draft)
	DropMode    = "not-client" // anything but a client request (mode 3)
	DropRate    = "rate-limit" // the client sent more than its share
	DropTable   = "table-full" // too many clients tracked for rate limiting
	DropSend    = "send-error" // the reply could not be sent
	DropSource  = "bad-source" // from port 0: nowhere to answer
)

// request is what the server needs from a client's packet.
type request struct {
	version  uint8
	poll     int8
	transmit uint64 // the client's transmit timestamp, echoed as origin
}

var (
	errShort   = errors.New(DropShort)
	errVersion = errors.New(DropVersion)
	errMode    = errors.New(DropMode)
)

// parseRequest checks a packet received on the server port. Only client
// requests (mode 3, RFC 5905 §9.2: the server answers mode 3 with mode 4)
// of versions 1–4 are served; symmetric, broadcast and control (mode 6/7,
// the monlist amplifier) packets are dropped. The error text is the drop
// reason.
func parseRequest(b []byte) (request, error) {
	if len(b) < headerLen {
		return request{}, errShort
	}
	v := b[0] >> 3 & 7
	if v < 1 || v > 4 {
		return request{}, errVersion
	}
	if b[0]&7 != modeClient {
		return request{}, errMode
	}
	return request{version: v, poll: int8(b[2]), transmit: binary.BigEndian.Uint64(b[40:48])}, nil
}

// upstream is what the server says about its own synchronisation.
type upstream struct {
	synced bool
	// stratum of the server the gizmo synchronised to; the gizmo serves
	// stratum+1 (RFC 5905 §7.3).
	stratum uint8
	// leap is the upstream's leap warning (1: insert, 2: delete a second
	// at the end of the month), passed on to clients (RFC 5905 §7.3).
	leap    uint8
	refID   uint32
	refTime time.Time
	// rootDelay and rootDispersion to the primary source, including the
	// hop to the upstream server (RFC 5905 §7.3).
	rootDelay, rootDispersion time.Duration
}

// reply builds the server-mode answer to req (RFC 5905 §9.2, §7.3; RFC 4330
// §5). It is exactly 48 octets, never more than the request: the server
// cannot amplify. An unsynchronised gizmo answers with leap 3 and stratum
// 16, which clients must not synchronise to (RFC 5905 §7.3; RFC 4330 §5).
func reply(req request, up upstream, received, transmit time.Time) []byte {
	b := make([]byte, headerLen)
	leap, stratum := up.leap&3, byte(up.stratum+1)
	if !up.synced || up.stratum == 0 || up.stratum >= maxStratum-1 || leap == leapAlarm {
		leap, stratum = leapAlarm, maxStratum
	}
	b[0] = leap<<6 | req.version<<3 | modeServer
	b[1] = stratum
	b[2] = byte(req.poll)
	p := int8(precision)
	b[3] = byte(p)
	binary.BigEndian.PutUint32(b[4:], shortFormat(up.rootDelay))
	binary.BigEndian.PutUint32(b[8:], shortFormat(up.rootDispersion))
	if stratum < maxStratum {
		binary.BigEndian.PutUint32(b[12:], up.refID)
		binary.BigEndian.PutUint64(b[16:], timestamp(up.refTime))
	}
	binary.BigEndian.PutUint64(b[24:], req.transmit)
	binary.BigEndian.PutUint64(b[32:], timestamp(received))
	binary.BigEndian.PutUint64(b[40:], timestamp(transmit))
	return b
}

// refIDOf is the reference ID a secondary server sends for its upstream
// (RFC 5905 §7.3): the IPv4 address, or the first four octets of the MD5
// of the IPv6 address. It only detects loops; it is not a security
// mechanism, so MD5 is what the RFC asks for.
func refIDOf(a netip.Addr) uint32 {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return binary.BigEndian.Uint32(b[:])
	}
	b := a.As16()
	sum := md5.Sum(b[:])
	return binary.BigEndian.Uint32(sum[:4])
}

// ntpEpoch is the origin of NTP era 0 (RFC 5905 §6).
var ntpEpoch = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)

// timestamp is the 64-bit NTP timestamp format (RFC 5905 §6): seconds since
// 1900 modulo 2^32 (eras wrap in 2036) and a 32-bit fraction.
func timestamp(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	sec := uint32(t.Unix() - ntpEpoch.Unix()) // modulo 2^32: eras wrap
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return uint64(sec)<<32 | frac
}

// shortFormat is the 32-bit NTP short format (RFC 5905 §6): 16.16 fixed
// point seconds, saturating.
func shortFormat(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	if d >= 1<<16*time.Second {
		return math.MaxUint32
	}
	return uint32(uint64(d) << 16 / uint64(time.Second))
}
