package nat64

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Quota defaults, the set a home router ships (the package's docs in
// doc.go say why): a session opened from the LAN counts against its /64,
// its host (the Ethernet source) and its address's share of the host's;
// one opened from the IPv4 side counts against its binding only
// (bpf/quota.h).
const (
	// DefaultMaxSessions is the session table.
	DefaultMaxSessions = 131072
	// DefaultMaxSessionsPer64 is three quarters of the table.
	DefaultMaxSessionsPer64 = DefaultMaxSessions / 4 * 3
	// DefaultMaxSessionsPerMAC is one LAN host's share: an eighth of
	// the table.
	DefaultMaxSessionsPerMAC = DefaultMaxSessions / 8
	// DefaultMaxSessionsPerHost is one address's share of its host's:
	// half of it.
	DefaultMaxSessionsPerHost = DefaultMaxSessionsPerMAC / 2
	// DefaultMaxInboundSessionsPerBinding is what a remote the host talks
	// to may open on the host's binding from its other ports (STUN, SIP,
	// games use a few); past it a spray of source ports is refused.
	DefaultMaxInboundSessionsPerBinding = 64
	// DefaultICMPErrorsPerSecond is the rate of the translator's own ICMP
	// errors in each direction, with a burst of a fifth of a second's.
	DefaultICMPErrorsPerSecond = 100
)

// Session flags, mirrored from bpf/nat64.h: what a session was charged to.
const (
	sessHost    = 1
	sessInbound = 2
	sessMAC     = 4
)

// quotas are the program's live-session counts (nat64_quota128,
// nat64_quota64, nat64_quotamac, nat64_quotabind), mapped into this process: the program
// adds a charge with an atomic add when it opens a session, the reaper
// takes it back with an atomic subtract when it removes one, and neither
// can lose the other's update. The arrays never fill.
type quotas struct {
	q128, q64, mac, bind []byte
}

func mapQuotas(objs *nat64Objects) (*quotas, error) {
	q := &quotas{}
	var err error
	if q.q128, err = mmapArray(objs.Nat64Quota128); err != nil {
		return nil, err
	}
	if q.q64, err = mmapArray(objs.Nat64Quota64); err != nil {
		q.unmap()
		return nil, err
	}
	if q.mac, err = mmapArray(objs.Nat64Quotamac); err != nil {
		q.unmap()
		return nil, err
	}
	if q.bind, err = mmapArray(objs.Nat64Quotabind); err != nil {
		q.unmap()
		return nil, err
	}
	return q, nil
}

// mmapArray maps the values of a BPF_F_MMAPABLE array of __u64.
func mmapArray(m *ebpf.Map) ([]byte, error) {
	if m.ValueSize() != 8 {
		return nil, fmt.Errorf("nat64: quota map %s: value size %d, want 8", m, m.ValueSize())
	}
	page := os.Getpagesize()
	size := (int(m.MaxEntries())*8 + page - 1) / page * page
	b, err := unix.Mmap(m.FD(), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("nat64: map quota counts: %w", err)
	}
	return b[:int(m.MaxEntries())*8], nil
}

func (q *quotas) unmap() {
	for _, b := range [][]byte{q.q128, q.q64, q.mac, q.bind} {
		if b != nil {
			_ = unix.Munmap(b[:cap(b)])
		}
	}
	q.q128, q.q64, q.mac, q.bind = nil, nil, nil, nil
}

// slot returns the counter of slot i, or nil when i is outside b.
func slot(b []byte, i uint32) *uint64 {
	if uint64(i)*8+8 > uint64(len(b)) {
		return nil
	}
	// The mapping is page aligned and the values are 8 bytes each.
	return (*uint64)(unsafe.Pointer(&b[i*8]))
}

// giveBack subtracts one charge, never below zero: a count that is already
// zero (a session of a layout without charges) stays zero.
func giveBack(p *uint64) {
	if p == nil {
		return
	}
	for {
		v := atomic.LoadUint64(p)
		if v == 0 || atomic.CompareAndSwapUint64(p, v, v-1) {
			return
		}
	}
}

// release gives back what the removed session k (with value v) was
// charged to.
func (q *quotas) release(k nat64SessKey, v nat64SessVal) {
	if v.Flags&sessHost != 0 {
		giveBack(slot(q.q128, uint32(v.Q128)))
		giveBack(slot(q.q64, uint32(v.Q64)))
	}
	if v.Flags&sessMAC != 0 {
		giveBack(slot(q.mac, uint32(v.Qmac)))
	}
	if v.Flags&sessInbound != 0 {
		giveBack(slot(q.bind, bindSlot(k.Proto, v.PoolPort)))
	}
}

// bindSlot is quota_bind_slot of bpf/quota.h: protocol and pool port (as
// stored, network order). The pools' port ranges never overlap
// (LANLegacy.Ports), so the port names the pool too.
func bindSlot(proto uint8, port4 uint16) uint32 {
	base := uint32(2 * 65536)
	switch proto {
	case ProtoTCP:
		base = 0
	case ProtoUDP:
		base = 65536
	}
	return base + uint32(port16(port4))
}

// charged reads the sessions charged to an address's slot: its own and
// those of any address that hashes to the same slot (bpf/quota.h).
func (q *quotas) charged(seed uint32, a [16]byte) uint64 {
	_, s128 := quotaSlots(seed, a)
	if p := slot(q.q128, s128); p != nil {
		return atomic.LoadUint64(p)
	}
	return 0
}

// quotaSlots is quota_slots of bpf/quota.h: the slots of an address's /64
// and of the address. The C loads the address as four native-endian words.
func quotaSlots(seed uint32, a [16]byte) (s64, s128 uint32) {
	w := func(i int) uint32 { return nativeEndian.Uint32(a[4*i:]) }
	h := mix32(seed ^ w(0))
	h = mix32(h ^ w(1))
	s64 = h & (1<<12 - 1)
	h = mix32(h ^ w(2))
	h = mix32(h ^ w(3))
	s128 = h & (1<<16 - 1)
	return s64, s128
}

// macSlot is quota_mac_slot of bpf/quota.h: a LAN host's slot. The C
// loads the MAC as a native-endian word and half-word.
func macSlot(seed uint32, mac [6]byte) uint32 {
	h := mix32(seed ^ nativeEndian.Uint32(mac[:4]))
	h = mix32(h ^ uint32(nativeEndian.Uint16(mac[4:])))
	return h & (1<<16 - 1)
}

// chargedMAC reads the sessions charged to a LAN host's slot.
func (q *quotas) chargedMAC(seed uint32, mac [6]byte) uint64 {
	if p := slot(q.mac, macSlot(seed, mac)); p != nil {
		return atomic.LoadUint64(p)
	}
	return 0
}

func mix32(h uint32) uint32 {
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// removeSession deletes session k and gives back its charges. It reports
// whether the session existed; the value it had is in *old.
func (d *datapath) removeSession(k nat64SessKey, old *nat64SessVal) (bool, error) {
	if err := d.objs.Nat64Sess.LookupAndDelete(&k, old); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return false, nil
		}
		return false, err
	}
	d.quota.release(k, *old)
	return true, nil
}
