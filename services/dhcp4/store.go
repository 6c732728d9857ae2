package dhcp4

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/persist"
)

// LeaseFile is the name of the lease database in the state directory.
const LeaseFile = "dhcp4-leases.json"

// leaseFileVersion changes when the format does; a reader never guesses.
const leaseFileVersion = 1

// leaseRecord is one binding as stored. Expired bindings are kept so that a
// returning client gets its previous address (RFC 2131 §4.3.1).
type leaseRecord struct {
	MAC      string     `json:"mac"`
	IP       netip.Addr `json:"ip"`
	Hostname string     `json:"hostname,omitempty"`
	Expires  time.Time  `json:"expires"`
}

type leaseFile struct {
	Version int           `json:"version"`
	Leases  []leaseRecord `json:"leases"`
}

// loadLeases reads the lease file. A missing file is an empty database; a
// corrupt one is moved aside by persist.ReadJSON and logged in one line, and
// the server starts empty rather than not at all. Records that make no
// sense (bad MAC, non-IPv4 address) are skipped and counted in that line.
func loadLeases(path string, log *slog.Logger) []leaseRecord {
	var f leaseFile
	found, err := persist.ReadJSON(path, &f)
	if err != nil {
		if errors.Is(err, persist.ErrCorrupt) {
			log.Error("dhcp4: lease file is corrupt, starting with no leases", "err", err)
		} else {
			log.Error("dhcp4: cannot read lease file, starting with no leases", "path", path, "err", err)
		}
		return nil
	}
	if !found {
		return nil
	}
	if f.Version != leaseFileVersion {
		log.Error("dhcp4: lease file has an unknown version, starting with no leases", "path", path, "version", f.Version)
		return nil
	}
	out := f.Leases[:0]
	skipped := 0
	for _, r := range f.Leases {
		hw, err := net.ParseMAC(r.MAC)
		if err != nil || len(hw) != 6 || !r.IP.Is4() || r.Expires.IsZero() {
			skipped++
			continue
		}
		r.MAC = hw.String()
		r.Hostname = sanitizeLabel(r.Hostname)
		out = append(out, r)
	}
	log.Info("dhcp4: leases loaded", "path", path, "bindings", len(out), "skipped", skipped)
	return out
}

// writeLeases replaces the lease file atomically (persist.WriteFile: temp
// file, fsync, rename, fsync of the directory).
func writeLeases(path string, recs []leaseRecord) error {
	b, err := json.Marshal(leaseFile{Version: leaseFileVersion, Leases: recs})
	if err != nil {
		return fmt.Errorf("dhcp4: encode leases: %w", err)
	}
	if err := persist.WriteFile(path, append(b, '\n')); err != nil {
		return fmt.Errorf("dhcp4: write leases: %w", err)
	}
	return nil
}

func leasePath(stateDir string) string { return filepath.Join(stateDir, LeaseFile) }
