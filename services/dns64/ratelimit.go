package dns64

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// limiter is a token bucket per client address, against floods from one
// LAN host (a misbehaving device must not starve the others).
//
// Each bucket is kept as the generic cell rate algorithm keeps it: one
// number, the instant the bucket will be full again. That fits an atomic
// word, so a query takes no lock a query on the other core could hold
// (the readers of one busy host share its bucket), only the read lock of
// the map, which waits only while a new client is added.
type limiter struct {
	rate float64 // tokens per second; ≤ 0 disables limiting

	interval time.Duration // one token
	depth    time.Duration // burst tokens
	epoch    time.Time     // buckets count nanoseconds since

	mu      sync.RWMutex
	buckets map[netip.Addr]*bucket
}

// bucket holds when it will be full: nanoseconds after the limiter's
// epoch. Each query allowed moves that one interval later; a query that
// would move it more than the burst's depth past now is refused.
type bucket struct {
	full atomic.Int64
}

// maxDepth bounds how far ahead a bucket's full instant can be.
const maxDepth = time.Duration(1 << 60)

// maxBuckets bounds the limiter's memory under a spoofed-source flood.
const maxBuckets = 16384

func newLimiter(rate float64, burst int) *limiter {
	l := &limiter{rate: rate, epoch: time.Now(), buckets: map[netip.Addr]*bucket{}}
	if rate > 0 {
		burst = max(burst, 1)
		// A rate so low that the burst outlasts 36 years is as good as
		// never refilling; the bound keeps the sums far from overflow.
		l.interval = time.Duration(min(float64(time.Second)/rate, float64(maxDepth)/float64(burst)))
		l.depth = l.interval * time.Duration(burst)
	}
	return l
}

func (l *limiter) allow(a netip.Addr, now time.Time) bool {
	if l.rate <= 0 {
		return true
	}
	l.mu.RLock()
	b := l.buckets[a]
	l.mu.RUnlock()
	if b == nil {
		b = l.add(a, now)
	}
	t := int64(now.Sub(l.epoch))
	for {
		full := b.full.Load()
		next := max(full, t) + int64(l.interval)
		if next-t > int64(l.depth) {
			return false
		}
		if b.full.CompareAndSwap(full, next) {
			return true
		}
	}
}

// add returns a's bucket, making a full one if it has none.
func (l *limiter) add(a netip.Addr, now time.Time) *bucket {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.buckets[a]; b != nil {
		return b
	}
	if len(l.buckets) >= maxBuckets {
		l.sweep(now)
	}
	b := new(bucket)
	b.full.Store(int64(now.Sub(l.epoch)))
	l.buckets[a] = b
	return b
}

// sweep forgets buckets that have refilled: they carry no information. If
// that frees nothing (a flood from many sources), it forgets them all, which
// at worst grants each source one more burst. The caller holds l.mu.
func (l *limiter) sweep(now time.Time) {
	t := int64(now.Sub(l.epoch))
	for a, b := range l.buckets {
		if b.full.Load() <= t {
			delete(l.buckets, a)
		}
	}
	if len(l.buckets) >= maxBuckets {
		clear(l.buckets)
	}
}
