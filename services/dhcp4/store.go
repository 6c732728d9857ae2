package dhcp4

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"codeberg.org/monostack/gizmo/internal/persist"
	"golang.org/x/sys/unix"
)

// The lease database is two files in the state directory: a snapshot,
// replaced atomically (persist.WriteJSON: temp file, fsync, rename), and a
// journal of the changes since, appended and fdatasync'ed once per batch of
// ACKs. A batch costs one small append and one disk flush instead of
// rewriting every lease, which keeps the flush, and so every ACK's wait,
// short even with thousands of leases.
const (
	LeaseFile   = "dhcp4-leases.json"
	JournalFile = "dhcp4-leases.journal"
)

// leaseFileVersion changes when the format does; a reader never guesses.
const leaseFileVersion = 1

// leaseRecord is one binding as stored. Expired bindings are kept so that a
// returning client gets its previous address (RFC 2131 §4.3.1). In the
// journal, Deleted records a binding that is gone, and Seq orders records
// against the snapshot.
type leaseRecord struct {
	Seq      uint64     `json:"seq,omitempty"`
	MAC      string     `json:"mac"`
	IP       netip.Addr `json:"ip,omitzero"`
	Hostname string     `json:"hostname,omitempty"`
	Expires  time.Time  `json:"expires,omitzero"`
	Deleted  bool       `json:"deleted,omitempty"`
}

type leaseFile struct {
	Version int `json:"version"`
	// Seq is the last journal record the snapshot includes.
	Seq    uint64        `json:"seq"`
	Leases []leaseRecord `json:"leases"`
}

// leaseStore owns the two files. Only the committer goroutine uses it.
type leaseStore struct {
	snapshotPath, journalPath string
	log                       *slog.Logger
	journal                   *os.File
	seq                       uint64
	journaled                 int // records in the journal
}

// openStore reads the lease database and returns the bindings it holds. It
// never fails: a corrupt snapshot is moved aside by persist.ReadJSON and
// logged in one line; a journal that stops making sense is replayed up to
// that point, moved aside and logged. The caller compacts right after, so
// that the server runs on one clean snapshot and an empty journal.
func openStore(stateDir string, log *slog.Logger) (*leaseStore, []leaseRecord) {
	s := &leaseStore{
		snapshotPath: filepath.Join(stateDir, LeaseFile),
		journalPath:  filepath.Join(stateDir, JournalFile),
		log:          log,
	}
	byMAC := map[string]leaseRecord{}
	var f leaseFile
	found, err := persist.ReadJSON(s.snapshotPath, &f)
	switch {
	case errors.Is(err, persist.ErrCorrupt):
		log.Error("dhcp4: lease file is corrupt, starting with no leases", "err", err)
	case err != nil:
		log.Error("dhcp4: cannot read lease file, starting with no leases", "path", s.snapshotPath, "err", err)
	case found && f.Version != leaseFileVersion:
		backup := moveAside(s.snapshotPath)
		log.Error("dhcp4: lease file has an unknown version, starting with no leases", "path", s.snapshotPath, "version", f.Version, "moved_to", backup)
	case found:
		s.seq = f.Seq
		for _, r := range f.Leases {
			byMAC[r.MAC] = r
		}
	}
	s.replay(byMAC)

	out := make([]leaseRecord, 0, len(byMAC))
	skipped := 0
	for _, r := range byMAC {
		hw, err := net.ParseMAC(r.MAC)
		if err != nil || len(hw) != 6 || !r.IP.Is4() || r.Expires.IsZero() {
			skipped++
			continue
		}
		r.MAC = hw.String()
		r.Hostname = sanitizeLabel(r.Hostname)
		out = append(out, r)
	}
	if found || len(out) > 0 {
		log.Info("dhcp4: leases loaded", "path", s.snapshotPath, "bindings", len(out), "skipped", skipped)
	}
	return s, out
}

// replay applies the journal records newer than the snapshot.
func (s *leaseStore) replay(byMAC map[string]leaseRecord) {
	b, err := os.ReadFile(s.journalPath)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		s.log.Error("dhcp4: cannot read lease journal", "path", s.journalPath, "err", err)
		return
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		var r leaseRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.Seq == 0 {
			// A torn last line is a batch whose ACKs never went out (they
			// wait for the write); anything else is damage. Either way what
			// follows cannot be trusted.
			backup := moveAside(s.journalPath)
			s.log.Error("dhcp4: lease journal is corrupt, using the records before the damage",
				"path", s.journalPath, "line", line, "moved_to", backup)
			return
		}
		if r.Seq <= s.seq {
			continue // already in the snapshot
		}
		s.seq = r.Seq
		if r.Deleted {
			delete(byMAC, r.MAC)
		} else {
			byMAC[r.MAC] = r
		}
	}
}

func moveAside(path string) string {
	backup := fmt.Sprintf("%s.corrupt-%d", path, time.Now().Unix())
	if err := os.Rename(path, backup); err != nil {
		return ""
	}
	return backup
}

// append writes changes to the journal and flushes them to the disk.
func (s *leaseStore) append(changes []leaseRecord) error {
	if s.journal == nil {
		j, err := os.OpenFile(s.journalPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("dhcp4: open lease journal: %w", err)
		}
		s.journal = j
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	seq := s.seq
	for _, r := range changes {
		seq++
		r.Seq = seq
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("dhcp4: encode lease: %w", err)
		}
	}
	// One write for the whole batch: either it all lands or, after a crash,
	// the tail is torn and replay stops there.
	if _, err := s.journal.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("dhcp4: append to lease journal: %w", err)
	}
	// fdatasync: the data and the file size, not the timestamps.
	if err := unix.Fdatasync(int(s.journal.Fd())); err != nil {
		return fmt.Errorf("dhcp4: fsync lease journal: %w", err)
	}
	s.seq = seq
	s.journaled += len(changes)
	return nil
}

// needsCompaction: the journal has grown past the size of the table it
// describes (and past a floor, so a small table is not rewritten often).
func (s *leaseStore) needsCompaction(tableSize int) bool {
	return s.journaled > max(4096, 2*tableSize)
}

// compact writes all as the new snapshot and empties the journal. A crash
// in between is harmless: the journal records carry sequence numbers that
// the new snapshot already covers.
func (s *leaseStore) compact(all []leaseRecord) error {
	err := persist.WriteJSON(s.snapshotPath, leaseFile{Version: leaseFileVersion, Seq: s.seq, Leases: all})
	if err != nil {
		return fmt.Errorf("dhcp4: write lease snapshot: %w", err)
	}
	if s.journal != nil {
		s.journal.Close()
		s.journal = nil
	}
	if err := os.Truncate(s.journalPath, 0); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("dhcp4: truncate lease journal: %w", err)
	}
	s.journaled = 0
	return nil
}

func (s *leaseStore) close() {
	if s.journal != nil {
		s.journal.Close()
		s.journal = nil
	}
}
