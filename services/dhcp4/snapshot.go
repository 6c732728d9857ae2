package dhcp4

import "time"

// The engine's side of the group commit, the restore at startup and the
// snapshots for the daemon. All of it takes the engine's lock briefly.

// takeBatch returns the durable replies waiting for a flush and the
// stored-state changes to write before they may go out. Both come from the
// same moment, so the changes cover every reply in the batch.
func (e *engine) takeBatch() (changes []leaseRecord, batch []outcome) {
	e.mu.Lock()
	defer e.mu.Unlock()
	batch, e.pending = e.pending, nil
	if len(e.t.changed) == 0 {
		return nil, batch
	}
	changes = make([]leaseRecord, 0, len(e.t.changed))
	for mac := range e.t.changed {
		if b := e.t.byMAC[mac]; b != nil && !b.Expires.IsZero() {
			changes = append(changes, recordOf(b))
		} else {
			changes = append(changes, leaseRecord{MAC: mac, Deleted: true})
		}
	}
	clear(e.t.changed)
	return changes, batch
}

func recordOf(b *binding) leaseRecord {
	return leaseRecord{MAC: b.MAC, IP: b.IP, Hostname: b.Hostname, Expires: b.Expires}
}

// snapshot is every stored binding, for compacting the journal.
func (e *engine) snapshot() []leaseRecord {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]leaseRecord, 0, len(e.t.byMAC))
	for _, b := range e.t.byMAC {
		if !b.Expires.IsZero() {
			out = append(out, recordOf(b))
		}
	}
	return out
}

// size is the number of bindings.
func (e *engine) size() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.t.byMAC)
}

// retry marks changes that could not be written, so that the next flush
// writes them again.
func (e *engine) retry(changes []leaseRecord) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range changes {
		e.t.changed[r.MAC] = struct{}{}
	}
}

// hasWork reports whether a flush would do anything.
func (e *engine) hasWork() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.t.changed) > 0 || len(e.pending) > 0
}

// restore loads persisted leases (before the first plan).
func (e *engine) restore(recs []leaseRecord) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range recs {
		if old := e.t.byIP[r.IP]; old != nil && !r.Expires.After(old.Expires) {
			continue // a duplicate address: the later lease wins
		}
		b := e.t.take(r.MAC, r.IP)
		b.Hostname, b.Expires, b.restored = r.Hostname, r.Expires, true
	}
	clear(e.t.changed) // what was just read is stored already
}

func (e *engine) leases(now time.Time) []Lease {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.followClock()
	bs := e.t.leases(now)
	out := make([]Lease, len(bs))
	for i, b := range bs {
		out[i] = *leaseOf(b)
	}
	return out
}

func (e *engine) stats(now time.Time) Stats {
	e.mu.Lock()
	e.followClock()
	n := 0
	for _, b := range e.t.byIP {
		if b.Expires.After(now) {
			n++
		}
	}
	e.mu.Unlock()
	return Stats{
		Offers: e.c.offers.Load(), Acks: e.c.acks.Load(), Naks: e.c.naks.Load(),
		Declines: e.c.declines.Load(), Releases: e.c.releases.Load(), Informs: e.c.informs.Load(),
		PoolExhausted: e.c.exhausted.Load(), Malformed: e.c.malformed.Load(),
		Ignored: e.c.ignored.Load(), V6OnlySent: e.c.v6only.Load(),
		PersistErrors: e.c.persistErr.Load(), ClockSteps: e.c.clockSteps.Load(), Leases: n,
		SourceMismatch: e.c.sourceMismatch.Load(), Unverified: e.c.unverified.Load(),
		RateLimitedClient: e.c.limitedClient.Load(), RateLimitedPort: e.c.limitedPort.Load(),
		SocketDrops: e.c.socketDrops.Load(),
	}
}
