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

// errSessionScan: a reaper pass could not read the sessions and did
// nothing.
var errSessionScan = errors.New("scan sessions")

// reapResult says what one pass did.
type reapResult struct {
	Sessions, Expired, Bindings, BindingsExpired, OrphanPorts int
}

type bindingID struct {
	port  uint16
	proto uint8
	pool  uint8
}

// reap expires sessions, then the bindings and filter entries no session
// needs any more, then pool ports that no binding holds. It never races a
// packet: a session is removed with an atomic lookup-and-delete, and if the
// returned value shows a packet refreshed it after the scan, it is put back
// (the datapath has then missed it for a few microseconds at most, and
// re-creates it on the next IPv6 packet). A failed step is reported, and
// the pass goes on: stopping early would keep every binding after it, and
// its pool port, until the next pass, and for ever if the step keeps
// failing.
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
		live[bindingID{v.PoolPort, k.Proto, k.Pool}] = true
		liveADF[nat64AdfKey{Addr4: k.Addr4, Port4: v.PoolPort, Proto: k.Proto, Pool: k.Pool}] = true
		res.Sessions++
	})
	if err != nil {
		// Without the live sessions no binding can be judged: nothing
		// is removed, the next pass tries again.
		return res, fmt.Errorf("nat64: reap: %w: %w", errSessionScan, err)
	}

	var errs []error
	for _, k := range cands {
		var old nat64SessVal
		if err := d.objs.Nat64Sess.LookupAndDelete(&k, &old); err != nil {
			if !errors.Is(err, ebpf.ErrKeyNotExist) {
				errs = append(errs, fmt.Errorf("delete session: %w", err))
			}
			continue
		}
		if !expired(old, k.Proto, now) {
			// Refreshed between scan and delete: put it back unless
			// a packet already made a new one (which charged itself;
			// then this one's charges go back).
			err := d.objs.Nat64Sess.Update(&k, &old, ebpf.UpdateNoExist)
			switch {
			case err == nil:
			case errors.Is(err, ebpf.ErrKeyExist):
				d.quota.release(k, old)
			default:
				d.quota.release(k, old)
				errs = append(errs, fmt.Errorf("restore session: %w", err))
			}
			live[bindingID{old.PoolPort, k.Proto, k.Pool}] = true
			liveADF[nat64AdfKey{Addr4: k.Addr4, Port4: old.PoolPort, Proto: k.Proto, Pool: k.Pool}] = true
			res.Sessions++
			continue
		}
		d.quota.release(k, old)
		res.Expired++
	}

	if err := d.reapBindings(now, live, &res); err != nil {
		errs = append(errs, err)
	}
	if err := d.reapOrphanPorts(&res); err != nil {
		errs = append(errs, err)
	}

	grace := uint64(bindingGrace)
	var staleADF []nat64AdfKey
	err = scanMap(d.objs.Nat64Adf, func(k nat64AdfKey, ts uint64) {
		if !liveADF[k] && ts+grace <= now {
			staleADF = append(staleADF, k)
		}
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("scan filters: %w", err))
	}
	for _, k := range staleADF {
		if err := d.objs.Nat64Adf.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, fmt.Errorf("delete filter: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("nat64: reap: %w", err)
	}
	return res, nil
}

// reapBindings removes the dynamic bindings without a live session after
// their grace period, both halves.
func (d *datapath) reapBindings(now uint64, live map[bindingID]bool, res *reapResult) error {
	grace := uint64(bindingGrace)
	var stale []nat64Bib6Key
	err := scanMap(d.objs.Nat64Bib6, func(bk nat64Bib6Key, bv nat64Bib6Val) {
		res.Bindings++
		if bv.Flags&bibStatic != 0 || live[bindingID{bv.Port4, bk.Proto, bk.Pool}] || bv.UsedNs+grace > now {
			return
		}
		stale = append(stale, bk)
	})
	if err != nil {
		return fmt.Errorf("scan bindings: %w", err)
	}
	var errs []error
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
		k4 := nat64Bib4Key{Port4: old.Port4, Proto: bk.Proto, Pool: bk.Pool}
		if err := d.objs.Nat64Bib4.Delete(&k4); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			// The port is now an orphan; reapOrphanPorts frees it.
			errs = append(errs, fmt.Errorf("delete binding: %w", err))
		}
		res.BindingsExpired++
	}
	return errors.Join(errs...)
}

// reapOrphanPorts frees pool ports whose IPv4 half of a binding has no
// IPv6 half: a pass stopped between the two deletes (a crash, a failed
// delete) would leak them for ever. The program claims a port in
// nat64_bib4 a moment before it writes the IPv6 half, so a port counts as
// an orphan only when two passes in a row found it one.
func (d *datapath) reapOrphanPorts(res *reapResult) error {
	seen := map[nat64Bib4Key]bool{}
	err := scanMap(d.objs.Nat64Bib4, func(k4 nat64Bib4Key, v4 nat64Bib4Val) {
		if v4.Flags&bibStatic != 0 {
			return
		}
		k6 := nat64Bib6Key{Addr: v4.Addr, Port: v4.Port, Proto: k4.Proto, Pool: k4.Pool}
		var v6 nat64Bib6Val
		if err := d.objs.Nat64Bib6.Lookup(&k6, &v6); err == nil && v6.Port4 == k4.Port4 {
			return
		}
		seen[k4] = true
	})
	if err != nil {
		return fmt.Errorf("scan pool ports: %w", err)
	}
	var errs []error
	for k4 := range seen {
		if !d.orphans[k4] {
			continue
		}
		if err := d.objs.Nat64Bib4.Delete(&k4); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, fmt.Errorf("free pool port: %w", err))
			continue
		}
		delete(seen, k4)
		res.OrphanPorts++
	}
	d.orphans = seen
	return errors.Join(errs...)
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
