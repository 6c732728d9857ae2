package nat64

import (
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
)

// Session lifetimes, RFC 6146 §4.
const (
	UDPTimeout            = 5 * time.Minute             // UDP_Min
	TCPEstablishedTimeout = 2*time.Hour + 4*time.Minute // TCP_EST
	TCPTransitoryTimeout  = 4 * time.Minute             // TCP_TRANS
	TCPIncomingSYNTimeout = 6 * time.Second             // TCP_INCOMING_SYN
	ICMPTimeout           = 60 * time.Second            // ICMP_DEFAULT
)

// bindingGrace keeps a binding without sessions a little longer, so that
// a packet creating a session on it between the reaper's two passes does
// not find it gone.
const bindingGrace = 30 * time.Second

// TCP states from bpf/nat64.h (RFC 6146 §3.5.2.2).
const (
	tcpV6Init        = 1
	tcpV4Init        = 2
	tcpEstablished   = 3
	tcpV4FinRcv      = 4
	tcpV6FinRcv      = 5
	tcpV4FinV6FinRcv = 6
	tcpTrans         = 7
)

// lifetime is how long a session lives after its last packet.
func lifetime(proto, state uint8) time.Duration {
	switch proto {
	case ProtoUDP:
		return UDPTimeout
	case ProtoICMP:
		return ICMPTimeout
	case ProtoTCP:
		switch state {
		case tcpEstablished, tcpV4FinRcv, tcpV6FinRcv:
			return TCPEstablishedTimeout
		case tcpV4Init:
			// An inbound SYN that the host never answered.
			return TCPIncomingSYNTimeout
		default:
			return TCPTransitoryTimeout
		}
	}
	return UDPTimeout
}

func expired(v nat64SessVal, proto uint8, now uint64) bool {
	return v.LastNs+uint64(lifetime(proto, v.State)) <= now
}

// reapResult says what one pass did.
type reapResult struct {
	Sessions, Expired, Bindings, BindingsExpired int
}

type bindingID struct {
	port  uint16
	proto uint8
}

// reap expires sessions, then the bindings and filter entries no session
// needs any more. It never races a packet: a session is removed with an
// atomic lookup-and-delete, and if the returned value shows a packet
// refreshed it after the scan, it is put back (the datapath has then
// missed it for a few microseconds at most, and re-creates it on the next
// IPv6 packet).
func (d *datapath) reap(now uint64) (reapResult, error) {
	var res reapResult
	live := map[bindingID]bool{}
	liveADF := map[nat64AdfKey]bool{}
	var cands []nat64SessKey

	err := scanMap(d.objs.Nat64Sess, func(k nat64SessKey, v nat64SessVal) {
		if expired(v, k.Proto, now) {
			cands = append(cands, k)
			return
		}
		live[bindingID{v.PoolPort, k.Proto}] = true
		liveADF[nat64AdfKey{Addr4: k.Addr4, Port4: v.PoolPort, Proto: k.Proto}] = true
		res.Sessions++
	})
	if err != nil {
		return res, fmt.Errorf("nat64: reap: scan sessions: %w", err)
	}

	reaped := map[[16]byte]uint64{}
	for _, k := range cands {
		var old nat64SessVal
		if err := d.objs.Nat64Sess.LookupAndDelete(&k, &old); err != nil {
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				continue
			}
			return res, fmt.Errorf("nat64: reap: delete session: %w", err)
		}
		if !expired(old, k.Proto, now) {
			// Refreshed between scan and delete: put it back unless
			// a packet already made a new one.
			err := d.objs.Nat64Sess.Update(&k, &old, ebpf.UpdateNoExist)
			if err != nil && !errors.Is(err, ebpf.ErrKeyExist) {
				return res, fmt.Errorf("nat64: reap: restore session: %w", err)
			}
			live[bindingID{old.PoolPort, k.Proto}] = true
			liveADF[nat64AdfKey{Addr4: k.Addr4, Port4: old.PoolPort, Proto: k.Proto}] = true
			res.Sessions++
			continue
		}
		reaped[k.Addr6]++
		res.Expired++
	}
	// The live count per host is created minus reaped; only this side
	// writes reaped, so a read-add-write is safe here.
	for a, n := range reaped {
		hk := nat64Lpm6Key{Prefixlen: 128, Addr: a}
		var cur uint64
		_ = d.objs.Nat64Hreaped.Lookup(&hk, &cur)
		cur += n
		if err := d.objs.Nat64Hreaped.Update(&hk, cur, ebpf.UpdateAny); err != nil {
			return res, fmt.Errorf("nat64: reap: host count: %w", err)
		}
	}

	grace := uint64(bindingGrace)
	var stale []nat64Bib6Key
	err = scanMap(d.objs.Nat64Bib6, func(bk nat64Bib6Key, bv nat64Bib6Val) {
		res.Bindings++
		if bv.Flags&bibStatic != 0 || live[bindingID{bv.Port4, bk.Proto}] || bv.UsedNs+grace > now {
			return
		}
		stale = append(stale, bk)
	})
	if err != nil {
		return res, fmt.Errorf("nat64: reap: scan bindings: %w", err)
	}
	for _, bk := range stale {
		var old nat64Bib6Val
		if err := d.objs.Nat64Bib6.LookupAndDelete(&bk, &old); err != nil {
			continue
		}
		if old.UsedNs+grace > now {
			// A session was created on it meanwhile.
			_ = d.objs.Nat64Bib6.Update(&bk, &old, ebpf.UpdateNoExist)
			continue
		}
		k4 := nat64Bib4Key{Port4: old.Port4, Proto: bk.Proto}
		if err := d.objs.Nat64Bib4.Delete(&k4); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return res, fmt.Errorf("nat64: reap: delete binding: %w", err)
		}
		res.BindingsExpired++
	}

	var staleADF []nat64AdfKey
	err = scanMap(d.objs.Nat64Adf, func(k nat64AdfKey, ts uint64) {
		if !liveADF[k] && ts+grace <= now {
			staleADF = append(staleADF, k)
		}
	})
	if err != nil {
		return res, fmt.Errorf("nat64: reap: filters: %w", err)
	}
	for _, k := range staleADF {
		if err := d.objs.Nat64Adf.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return res, fmt.Errorf("nat64: reap: filters: %w", err)
		}
	}
	return res, nil
}

// scanMap calls fn for every element, fetching them in batches of 4096
// (one syscall per batch instead of two per element: a pass over 100 000
// sessions must not stall). Kernels or maps without batch support fall back
// to the iterator.
func scanMap[K, V any](m *ebpf.Map, fn func(K, V)) error {
	const chunk = 4096
	keys := make([]K, chunk)
	vals := make([]V, chunk)
	var cursor ebpf.MapBatchCursor
	seen := 0
	for {
		n, err := m.BatchLookup(&cursor, keys, vals, nil)
		for i := range n {
			fn(keys[i], vals[i])
		}
		seen += n
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		if err != nil {
			if seen > 0 {
				return err
			}
			break
		}
	}
	var k K
	var v V
	it := m.Iterate()
	for it.Next(&k, &v) {
		fn(k, v)
	}
	return it.Err()
}
