package dhcp6pd

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"errors"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

// Reconfigure Key Authentication Protocol, RFC 8415 §20.4.
const (
	authProtoReconfigureKey = 3
	authAlgHMACMD5          = 1
	authRDMMonotonic        = 0
	authInfoKey             = 1 // auth info carries the key (in Reply)
	authInfoHMAC            = 2 // auth info carries the HMAC-MD5 digest (in Reconfigure)
	reconfigureKeyLen       = 16
	authFixedLen            = 11 // protocol, algorithm, RDM, 8 octets replay detection (§21.11)
)

// authOption is a decoded OPTION_AUTH (RFC 8415 §21.11).
type authOption struct {
	Protocol, Algorithm, RDM uint8
	Replay                   uint64
	Info                     []byte
	// offset of Info within the raw message, for zeroing the digest
	infoOffset int
}

// findAuth walks the top-level options of a raw (non-relay) DHCPv6 message
// and returns its single authentication option. It works on the bytes
// because the HMAC covers the message exactly as sent.
func findAuth(raw []byte) (authOption, error) {
	if len(raw) < 4 {
		return authOption{}, errors.New("short message")
	}
	var (
		found bool
		a     authOption
	)
	for off := 4; off < len(raw); {
		if len(raw)-off < 4 {
			return authOption{}, errors.New("truncated option header")
		}
		code := dhcpv6.OptionCode(binary.BigEndian.Uint16(raw[off:]))
		n := int(binary.BigEndian.Uint16(raw[off+2:]))
		data := off + 4
		if len(raw)-data < n {
			return authOption{}, errors.New("truncated option")
		}
		if code == dhcpv6.OptionAuth {
			if found {
				return authOption{}, errors.New("more than one authentication option")
			}
			if n < authFixedLen {
				return authOption{}, errors.New("short authentication option")
			}
			found = true
			b := raw[data : data+n]
			a = authOption{
				Protocol:   b[0],
				Algorithm:  b[1],
				RDM:        b[2],
				Replay:     binary.BigEndian.Uint64(b[3:11]),
				Info:       b[authFixedLen:],
				infoOffset: data + authFixedLen,
			}
		}
		off = data + n
	}
	if !found {
		return authOption{}, errors.New("no authentication option")
	}
	return a, nil
}

// reconfigureKey returns the reconfigure key a server sent in a Reply
// (RFC 8415 §20.4.1), and its replay detection value.
func reconfigureKey(raw []byte) (key []byte, replay uint64, ok bool) {
	a, err := findAuth(raw)
	if err != nil || a.Protocol != authProtoReconfigureKey || a.Algorithm != authAlgHMACMD5 ||
		a.RDM != authRDMMonotonic || len(a.Info) != 1+reconfigureKeyLen || a.Info[0] != authInfoKey {
		return nil, 0, false
	}
	return append([]byte(nil), a.Info[1:]...), a.Replay, true
}

// verifyReconfigure checks the HMAC-MD5 of a Reconfigure message with the
// reconfigure key (RFC 8415 §20.4.2, §20.4.4): the digest is computed over the
// whole message with the digest field set to zero. It returns the replay
// detection value, which the caller must check is increasing (§20.3).
func verifyReconfigure(raw, key []byte) (uint64, error) {
	if len(key) != reconfigureKeyLen {
		return 0, errors.New("no reconfigure key from the server")
	}
	a, err := findAuth(raw)
	if err != nil {
		return 0, err
	}
	if a.Protocol != authProtoReconfigureKey || a.Algorithm != authAlgHMACMD5 || a.RDM != authRDMMonotonic {
		return 0, errors.New("not reconfigure key authentication")
	}
	if len(a.Info) != 1+md5.Size || a.Info[0] != authInfoHMAC {
		return 0, errors.New("authentication information is not an HMAC-MD5 digest")
	}
	got := append([]byte(nil), a.Info[1:]...)
	zeroed := append([]byte(nil), raw...)
	clear(zeroed[a.infoOffset+1 : a.infoOffset+1+md5.Size])
	mac := hmac.New(md5.New, key)
	mac.Write(zeroed)
	if !hmac.Equal(mac.Sum(nil), got) {
		return 0, errors.New("HMAC-MD5 digest mismatch")
	}
	return a.Replay, nil
}
