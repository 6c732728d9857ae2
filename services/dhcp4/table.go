package dhcp4

import (
	"net/netip"
	"sort"
	"time"
)

// How long an address stays held for an outstanding DHCPOFFER, and how long
// an address a client declined stays out of the pool. RFC 2131 §4.3.1 asks
// the server to reserve an offered address; §4.3.3 to mark a declined one
// as not available and to notify the administrator.
const (
	offerHold   = 60 * time.Second
	declineHold = 10 * time.Minute
)

// binding is everything the server remembers about one MAC address.
type binding struct {
	MAC      string
	IP       netip.Addr
	Hostname string
	// Expires is the end of the lease. A past or zero time means the client
	// holds no lease; the binding is still remembered so that the client
	// gets the same address back (RFC 2131 §4.3.1 "previous address").
	Expires time.Time
	// OfferedUntil holds IP for an outstanding DHCPOFFER. Never persisted.
	OfferedUntil time.Time
	// restored: Expires was read from disk, written under an earlier run's
	// clock, and is not moved when this run's clock steps (clock.go).
	restored bool
}

// active reports whether the binding keeps its address away from others.
func (b *binding) active(now time.Time) bool {
	return b.Expires.After(now) || b.OfferedUntil.After(now)
}

// table is the lease database: bindings by MAC and by address, declined
// addresses, and the allocator over the plan's pool. It is not safe for
// concurrent use; the engine serializes access.
type table struct {
	byMAC    map[string]*binding
	byIP     map[netip.Addr]*binding
	declined map[netip.Addr]time.Time

	// From the plan.
	subnet     netip.Prefix
	start, end uint32
	excluded   map[netip.Addr]bool   // the server, the router, network, broadcast
	reservedBy map[netip.Addr]string // reserved address → MAC
	reserved   map[string]netip.Addr // MAC → reserved address

	// cursor is where the search for a never-used address resumes, so that a
	// storm of new clients costs O(1) per allocation instead of a pool scan.
	cursor uint32

	// changed are the MACs whose stored state (lease, hostname, existence)
	// changed since the last write to the lease journal.
	changed map[string]struct{}
}

func newTable() *table {
	return &table{
		byMAC:      map[string]*binding{},
		byIP:       map[netip.Addr]*binding{},
		declined:   map[netip.Addr]time.Time{},
		excluded:   map[netip.Addr]bool{},
		reservedBy: map[netip.Addr]string{},
		reserved:   map[string]netip.Addr{},
		changed:    map[string]struct{}{},
	}
}

// touch records that b's stored state changed. Bindings that never held a
// lease (only offered) are not stored, so changing them costs no write.
func (t *table) touch(b *binding) {
	if !b.Expires.IsZero() {
		t.changed[b.MAC] = struct{}{}
	}
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func addrFrom(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// configure applies a (validated, enabled) plan. Bindings outside the new
// subnet are forgotten: their clients are NAKed at the next renewal
// (RFC 2131 §4.3.2) and start over in the new network.
func (t *table) configure(p *Plan) (dropped []*binding) {
	t.subnet = p.Subnet()
	t.start, t.end = u32(p.PoolStart), u32(p.PoolEnd)
	if t.cursor < t.start || t.cursor > t.end {
		t.cursor = t.start
	}
	t.excluded = map[netip.Addr]bool{
		p.Server.Addr():     true,
		t.subnet.Addr():     true,
		Broadcast(t.subnet): true,
	}
	if p.Router.IsValid() {
		t.excluded[p.Router] = true
	}
	for _, d := range p.DNS {
		t.excluded[d] = true
	}
	for _, n := range p.NTP {
		t.excluded[n] = true
	}
	t.reservedBy = map[netip.Addr]string{}
	t.reserved = map[string]netip.Addr{}
	for mac, h := range p.Hosts {
		if h.Reserved.IsValid() && !t.excluded[h.Reserved] {
			t.reservedBy[h.Reserved] = mac
			t.reserved[mac] = h.Reserved
		}
	}
	for _, b := range t.byMAC {
		if !t.subnet.Contains(b.IP) {
			t.remove(b)
			dropped = append(dropped, b)
		}
	}
	return dropped
}

func (t *table) remove(b *binding) {
	t.touch(b)
	delete(t.byMAC, b.MAC)
	if t.byIP[b.IP] == b {
		delete(t.byIP, b.IP)
	}
}

// inPool reports whether ip may be leased dynamically.
func (t *table) inPool(ip netip.Addr) bool {
	if !ip.Is4() {
		return false
	}
	v := u32(ip)
	return v >= t.start && v <= t.end && !t.excluded[ip]
}

// usableBy reports whether mac may be given ip now. An address held by an
// expired binding of another client may be taken over; the caller then
// removes that binding (take).
func (t *table) usableBy(ip netip.Addr, mac string, now time.Time) bool {
	if !ip.Is4() || !t.subnet.Contains(ip) || t.excluded[ip] {
		return false
	}
	if owner, ok := t.reservedBy[ip]; ok {
		if owner != mac {
			return false
		}
	} else if !t.inPool(ip) {
		return false
	}
	if until, ok := t.declined[ip]; ok {
		if until.After(now) {
			return false
		}
		delete(t.declined, ip)
	}
	if b := t.byIP[ip]; b != nil && b.MAC != mac && b.active(now) {
		return false
	}
	return true
}

// take binds ip to mac (after usableBy said yes) and returns the binding.
func (t *table) take(mac string, ip netip.Addr) *binding {
	if other := t.byIP[ip]; other != nil && other.MAC != mac {
		t.remove(other)
	}
	b := t.byMAC[mac]
	if b == nil {
		b = &binding{MAC: mac}
		t.byMAC[mac] = b
	} else if b.IP != ip {
		if t.byIP[b.IP] == b {
			delete(t.byIP, b.IP)
		}
		// A new address ends the lease on the old one.
		t.touch(b)
		b.Expires = time.Time{}
	}
	b.IP = ip
	t.byIP[ip] = b
	return b
}

// choose picks the address for mac following RFC 2131 §4.3.1: the
// reservation, else the client's current or previous address, else the
// requested address, else a never-used address, else the address whose
// lease ended longest ago. ok is false when the pool is exhausted.
func (t *table) choose(mac string, requested netip.Addr, now time.Time) (netip.Addr, bool) {
	if r, ok := t.reserved[mac]; ok {
		if t.usableBy(r, mac, now) {
			return r, true
		}
	}
	if b := t.byMAC[mac]; b != nil && t.usableBy(b.IP, mac, now) {
		return b.IP, true
	}
	if requested.IsValid() && t.usableBy(requested, mac, now) {
		return requested, true
	}
	// Never-used addresses first, so that a returning client finds its
	// previous address still free for as long as possible.
	n := t.end - t.start + 1
	for i := uint32(0); i < n; i++ {
		v := t.cursor
		t.cursor++
		if t.cursor > t.end || t.cursor < t.start {
			t.cursor = t.start
		}
		ip := addrFrom(v)
		if t.byIP[ip] == nil && t.usableBy(ip, mac, now) {
			return ip, true
		}
	}
	// Then reclaim the binding that has been inactive longest.
	var oldest *binding
	for ip, b := range t.byIP {
		if b.MAC == mac || !t.usableBy(ip, mac, now) {
			continue
		}
		if oldest == nil || b.Expires.Before(oldest.Expires) ||
			(b.Expires.Equal(oldest.Expires) && b.IP.Less(oldest.IP)) {
			oldest = b
		}
	}
	if oldest != nil {
		return oldest.IP, true
	}
	return netip.Addr{}, false
}

// decline marks ip as unusable for declineHold (RFC 2131 §4.3.3) and removes
// the client's binding to it.
func (t *table) decline(mac string, ip netip.Addr, now time.Time) bool {
	b := t.byMAC[mac]
	if b == nil || b.IP != ip {
		return false
	}
	t.remove(b)
	t.declined[ip] = now.Add(declineHold)
	return true
}

// leases returns the bindings that hold a lease at now, ordered by address.
func (t *table) leases(now time.Time) []*binding {
	var out []*binding
	for _, b := range t.byIP {
		if b.Expires.After(now) {
			out = append(out, b)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IP.Less(out[j].IP) })
	return out
}
