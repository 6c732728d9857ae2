package dns64

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// answerMemo remembers the UDP answers the reader built from the cache, in
// wire format, until one of the cached responses they were made from
// expires (see Service.remember). A repeated question is then answered by
// copying bytes, patching the ID and lowering the TTLs that age, instead of
// parsing the query, looking up one or two cache entries, synthesizing AAAA
// records (RFC 6147 §5.1.7) and packing the answer again, which was about a
// third of the CPU time per query under dnsperf.
//
// Every entry is derived from cache entries and lives no longer than their
// TTLs allow (it can outlive one the cache evicted for room, as any cache
// may keep an answer until its TTL runs out), for one plan (Update installs
// a new plan, and entries of an older one are never used, so a policy
// change applies to the next query) and one DNS64 policy bit (part of the
// key, so hosts with DNS64 on and off get their own answers).
type answerMemo struct {
	seed        maphash.Seed
	maxPerShard int
	shards      [memoShards]memoShard
}

const memoShards = 16

type memoShard struct {
	mu      sync.RWMutex
	entries map[string]*memoEntry
}

// memoEntry is one remembered answer; it is never modified once stored.
type memoEntry struct {
	plan    *compiledPlan
	until   time.Time // the answer is valid before this
	tick    int64     // the cache tick wire was built in
	aging   []agingTTL
	wire    []byte // the packed answer; its ID is overwritten per query
	qtype   uint16
	effects queryEffects
	rcode   int
	tc      bool
}

// agingTTL is a TTL field of a remembered answer that drops by one every
// cache tick.
type agingTTL struct {
	off int    // of the field in the wire
	ttl uint32 // its value in the entry's tick
}

// age lowers the aging TTLs of resp, a copy of e.wire, by elapsed ticks.
func (e *memoEntry) age(resp []byte, elapsed uint32) {
	if elapsed == 0 {
		return
	}
	for _, a := range e.aging {
		binary.BigEndian.PutUint32(resp[a.off:], a.ttl-elapsed)
	}
}

// agingTTLs compares an answer with the same answer built ticks later and
// returns its TTL fields that dropped by exactly ticks (a non-nil, perhaps
// empty, slice). ok is false when the two differ in any other way: in a
// byte outside the TTLs, or by a TTL that dropped by some other amount.
func agingTTLs(now, later []byte, ticks uint32) (aging []agingTTL, ok bool) {
	if len(now) != len(later) || ticks == 0 {
		return nil, false
	}
	offs, ok := ttlOffsets(now)
	if !ok {
		return nil, false
	}
	aging = []agingTTL{}
	prev := 0
	for _, off := range offs {
		if !bytes.Equal(now[prev:off], later[prev:off]) {
			return nil, false
		}
		a, b := binary.BigEndian.Uint32(now[off:]), binary.BigEndian.Uint32(later[off:])
		switch {
		case a == b:
		case b < a && a-b == ticks:
			aging = append(aging, agingTTL{off: off, ttl: a})
		default:
			return nil, false
		}
		prev = off + 4
	}
	if !bytes.Equal(now[prev:], later[prev:]) {
		return nil, false
	}
	return aging, true
}

// ttlOffsets returns where the TTL field of every resource record of a
// packed message is (RFC 1035 §4.1.3), the OPT record's included.
func ttlOffsets(msg []byte) ([]int, bool) {
	if len(msg) < 12 {
		return nil, false
	}
	qd := int(binary.BigEndian.Uint16(msg[4:]))
	rrs := int(binary.BigEndian.Uint16(msg[6:])) + int(binary.BigEndian.Uint16(msg[8:])) + int(binary.BigEndian.Uint16(msg[10:]))
	off := 12
	skipName := func() bool {
		for off < len(msg) {
			l := msg[off]
			switch {
			case l == 0:
				off++
				return true
			case l&0xc0 == 0xc0: // a compression pointer ends the name
				off += 2
				return off <= len(msg)
			case l&0xc0 != 0:
				return false
			}
			off += 1 + int(l)
		}
		return false
	}
	for range qd {
		if !skipName() || off+4 > len(msg) {
			return nil, false
		}
		off += 4
	}
	offs := make([]int, 0, rrs)
	for range rrs {
		if !skipName() || off+10 > len(msg) {
			return nil, false
		}
		offs = append(offs, off+4)
		off += 10 + int(binary.BigEndian.Uint16(msg[off+8:]))
		if off > len(msg) {
			return nil, false
		}
	}
	return offs, off == len(msg)
}

// queryEffects are the counters building an answer moved besides the
// per-query ones, replayed when the memo answers instead (the statistics
// must not depend on which path answered).
type queryEffects struct {
	cacheHits   uint64
	excluded    uint64
	local       bool
	synthesized string // the name counted as synthesized, or ""
}

func newAnswerMemo(maxEntries int) *answerMemo {
	m := &answerMemo{seed: maphash.MakeSeed(), maxPerShard: max(1, maxEntries/memoShards)}
	for i := range m.shards {
		m.shards[i].entries = map[string]*memoEntry{}
	}
	return m
}

func (m *answerMemo) shard(key []byte) *memoShard {
	return &m.shards[maphash.Bytes(m.seed, key)%memoShards]
}

func (m *answerMemo) get(key []byte, p *compiledPlan, now time.Time) *memoEntry {
	sh := m.shard(key)
	sh.mu.RLock()
	e := sh.entries[string(key)]
	sh.mu.RUnlock()
	if e == nil || e.plan != p || !now.Before(e.until) {
		return nil
	}
	return e
}

func (m *answerMemo) put(key []byte, e *memoEntry) {
	sh := m.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if len(sh.entries) >= m.maxPerShard {
		// Full: forget one entry. Map iteration starts at a random place,
		// so this is random eviction, good enough for entries that live
		// for a second at most.
		for k := range sh.entries {
			delete(sh.entries, k)
			break
		}
	}
	sh.entries[string(key)] = e
}

func (m *answerMemo) size() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.RLock()
		n += len(sh.entries)
		sh.mu.RUnlock()
	}
	return n
}

// maxMemoKey bounds a memo key: a name (at most 255 bytes on the wire,
// RFC 1035 §3.1), type, class, flags and payload size.
const maxMemoKey = 255 + 4 + 1 + 2

// memoQuery is what the memo needs to know about a query.
type memoQuery struct {
	qtype   uint16
	flags   byte   // RD, CD, DO, EDNS: the query bits the answer depends on
	payload uint16 // UDP answer size limit
	qlen    int    // length of name, type and class on the wire
}

const (
	memoRD    = 1 << 0
	memoCD    = 1 << 1
	memoDO    = 1 << 2
	memoEDNS  = 1 << 3
	memoDNS64 = 1 << 4
)

// parseMemoQuery reads a query cheaply, for the memo. It accepts only the
// plain shape almost every stub resolver sends (one question of class IN, a
// name of lower-case letters, digits, '-' and '_' without compression, at
// most an OPT record of version 0 without options, nothing after it), so
// that an answer for one such query is right for every query with the same
// key. Anything else takes the full path, which answers it as before.
func parseMemoQuery(wire []byte) (memoQuery, bool) {
	var q memoQuery
	if len(wire) < 12+1+4 {
		return q, false
	}
	h := wire[2]
	if h&0x80 != 0 || h&0x78 != 0 { // a response, or an opcode other than QUERY
		return q, false
	}
	if binary.BigEndian.Uint16(wire[4:]) != 1 || binary.BigEndian.Uint16(wire[6:]) != 0 ||
		binary.BigEndian.Uint16(wire[8:]) != 0 {
		return q, false
	}
	arcount := binary.BigEndian.Uint16(wire[10:])
	if arcount > 1 {
		return q, false
	}
	if h&0x01 != 0 {
		q.flags |= memoRD
	}
	if wire[3]&0x10 != 0 {
		q.flags |= memoCD
	}
	off := 12
	for {
		if off >= len(wire) {
			return q, false
		}
		l := int(wire[off])
		if l == 0 {
			off++
			break
		}
		if l > 63 || off+1+l > len(wire) {
			return q, false // compression pointer, extended label, or short
		}
		for _, c := range wire[off+1 : off+1+l] {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return q, false
			}
		}
		off += 1 + l
		if off-12+1 > 255 { // with the root label still to come
			return q, false
		}
	}
	if off+4 > len(wire) || binary.BigEndian.Uint16(wire[off+2:]) != dns.ClassINET {
		return q, false
	}
	q.qtype = binary.BigEndian.Uint16(wire[off:])
	off += 4
	q.qlen = off - 12
	q.payload = dns.MinMsgSize
	if arcount == 1 {
		// RFC 6891 §6.1.2: root name, type OPT, class = payload size, TTL =
		// extended RCODE, version and flags, then the options.
		if off+11 != len(wire) || wire[off] != 0 || binary.BigEndian.Uint16(wire[off+1:]) != dns.TypeOPT ||
			wire[off+6] != 0 || binary.BigEndian.Uint16(wire[off+9:]) != 0 {
			return q, false
		}
		q.flags |= memoEDNS
		if wire[off+7]&0x80 != 0 {
			q.flags |= memoDO
		}
		q.payload = min(binary.BigEndian.Uint16(wire[off+3:]), serverPayload)
	} else if off != len(wire) {
		return q, false
	}
	return q, true
}

// key writes the memo key of a query (its question, flags and size limit)
// into buf and returns it.
func (q memoQuery) key(buf *[maxMemoKey]byte, wire []byte, dns64 bool) []byte {
	n := copy(buf[:], wire[12:12+q.qlen])
	buf[n] = q.flags
	if dns64 {
		buf[n] |= memoDNS64
	}
	binary.BigEndian.PutUint16(buf[n+1:], q.payload)
	return buf[:n+3]
}
