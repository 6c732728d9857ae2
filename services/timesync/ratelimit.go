package timesync

import (
	"net/netip"
	"time"
)

// Per-client rate limit of the server: a burst of clientBurst requests (a
// client's iburst at boot sends 4–8), then one per clientInterval, well
// above what an NTP client polls (RFC 5905 §7.3: MINPOLL is 16 s; SNTP
// clients must not poll faster than once a minute, RFC 4330 §10).
const (
	clientBurst    = 8
	clientInterval = 2 * time.Second
	// maxClients bounds the table under a spoofed-source flood; a home LAN
	// has far fewer hosts.
	maxClients = 4096
)

// limiter is a token bucket per client address, kept as the instant the
// bucket will be full again (the generic cell rate algorithm). It is used
// by one goroutine per socket under the server's lock.
type limiter struct {
	full map[netip.Addr]time.Time
}

func newLimiter() *limiter { return &limiter{full: map[netip.Addr]time.Time{}} }

// allow reports whether a request from a at now may be answered, and if
// not, the drop reason.
func (l *limiter) allow(a netip.Addr, now time.Time) (bool, string) {
	f, ok := l.full[a]
	if !ok {
		if len(l.full) >= maxClients {
			l.expire(now)
			if len(l.full) >= maxClients {
				return false, DropTable
			}
		}
		f = now
	}
	if f.Before(now) {
		f = now
	}
	f = f.Add(clientInterval)
	if f.Sub(now) > clientBurst*clientInterval {
		return false, DropRate
	}
	l.full[a] = f
	return true, ""
}

// expire forgets the clients whose bucket is full again: they are as if
// never seen.
func (l *limiter) expire(now time.Time) {
	for a, f := range l.full {
		if !f.After(now) {
			delete(l.full, a)
		}
	}
}
