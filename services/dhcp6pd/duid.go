package dhcp6pd

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"codeberg.org/monostack/gizmo/internal/persist"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
)

const (
	identityFile = "dhcp6pd-duid.json"
	leaseFile    = "dhcp6pd-lease.json"
)

// identity is the client's durable DHCP identity. RFC 8415 §11: the DUID
// must stay the same across restarts, or the server treats the gizmo as a new
// client and delegates a different prefix every boot.
type identity struct {
	DUID string `json:"duid"` // hex of the DUID bytes, type code included
	IAID uint32 `json:"iaid"`
}

// duidEpoch is the DUID-LLT time base, RFC 8415 §11.2.
var duidEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// loadIdentity reads the DUID and IAID from dir, creating and persisting
// them on first use: DUID-LLT from hw when the interface has an Ethernet
// address, otherwise DUID-UUID (RFC 6355).
func loadIdentity(dir string, hw net.HardwareAddr, now time.Time, log *slog.Logger) (dhcpv6.DUID, [4]byte, error) {
	path := filepath.Join(dir, identityFile)
	var id identity
	found, err := persist.ReadJSON(path, &id)
	if err != nil {
		if !errors.Is(err, persist.ErrCorrupt) {
			return nil, [4]byte{}, fmt.Errorf("dhcp6pd: load DUID: %w", err)
		}
		log.Error("dhcp6pd: DUID file corrupt, creating a new DUID; the ISP will likely delegate a new prefix", "err", err)
		found = false
	}
	if found {
		b, err := hex.DecodeString(id.DUID)
		if err == nil {
			var d dhcpv6.DUID
			if d, err = dhcpv6.DUIDFromBytes(b); err == nil {
				return d, iaidBytes(id.IAID), nil
			}
		}
		log.Error("dhcp6pd: stored DUID does not parse, creating a new one", "path", path, "err", err)
	}
	var d dhcpv6.DUID
	if len(hw) == 6 {
		d = &dhcpv6.DUIDLLT{
			HWType:        iana.HWTypeEthernet,
			Time:          uint32(now.Sub(duidEpoch) / time.Second),
			LinkLayerAddr: append(net.HardwareAddr(nil), hw...),
		}
	} else {
		var u [16]byte
		if _, err := rand.Read(u[:]); err != nil {
			return nil, [4]byte{}, fmt.Errorf("dhcp6pd: DUID-UUID: %w", err)
		}
		u[6] = u[6]&0x0f | 0x40 // version 4
		u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
		d = &dhcpv6.DUIDUUID{UUID: u}
	}
	id = identity{DUID: hex.EncodeToString(d.ToBytes()), IAID: 1}
	if err := persist.WriteJSON(path, id); err != nil {
		return nil, [4]byte{}, fmt.Errorf("dhcp6pd: store DUID: %w", err)
	}
	log.Info("dhcp6pd: created DUID", "duid", d.String(), "path", path)
	return d, iaidBytes(id.IAID), nil
}

func iaidBytes(v uint32) [4]byte {
	return [4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

// loadLease returns the persisted lease, if any.
func loadLease(dir string, log *slog.Logger) *Lease {
	var l Lease
	found, err := persist.ReadJSON(filepath.Join(dir, leaseFile), &l)
	if err != nil {
		log.Error("dhcp6pd: ignoring stored lease", "err", err)
		return nil
	}
	if !found || !l.Prefix.IsValid() {
		return nil
	}
	if err := DelegationPolicy(l.Prefix); err != nil {
		// Written before the policy held: not even a hint to ask for.
		log.Warn("dhcp6pd: ignoring stored lease", "prefix", l.Prefix, "err", err)
		return nil
	}
	return &l
}

func storeLease(dir string, l *Lease) error {
	if l == nil {
		return persist.WriteJSON(filepath.Join(dir, leaseFile), struct{}{})
	}
	return persist.WriteJSON(filepath.Join(dir, leaseFile), l)
}
