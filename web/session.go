package web

import (
	"container/list"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// sessions are the logged-in browsers: a random token in a cookie, kept
// here only as its SHA-256, so that a lookup's timing tells nothing about
// the tokens. At most max are kept; a login beyond that drops the least
// recently used one.
type sessions struct {
	idle, maxAge time.Duration
	max          int

	mu      sync.Mutex
	byHash  map[[32]byte]*list.Element // of *session
	lru     list.List                  // front: most recently used
	evicted uint64
	expired uint64
}

type session struct {
	hash            [32]byte
	created, usedAt time.Time
}

func newSessions(max int, idle, maxAge time.Duration) *sessions {
	return &sessions{max: max, idle: idle, maxAge: maxAge, byHash: map[[32]byte]*list.Element{}}
}

// create starts a session and returns its token.
func (s *sessions) create(now time.Time) string {
	var b [32]byte
	rand.Read(b[:])
	token := base64.RawURLEncoding.EncodeToString(b[:])
	h := sha256.Sum256([]byte(token))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(now)
	for s.lru.Len() >= s.max {
		s.removeLocked(s.lru.Back())
		s.evicted++
	}
	s.byHash[h] = s.lru.PushFront(&session{hash: h, created: now, usedAt: now})
	return token
}

// valid reports whether token is a live session and marks it used.
func (s *sessions) valid(token string, now time.Time) bool {
	if token == "" {
		return false
	}
	h := sha256.Sum256([]byte(token))
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byHash[h]
	if !ok {
		return false
	}
	se := e.Value.(*session)
	if s.ended(se, now) {
		s.removeLocked(e)
		s.expired++
		return false
	}
	se.usedAt = now
	s.lru.MoveToFront(e)
	return true
}

// end removes a session (logout).
func (s *sessions) end(token string) {
	h := sha256.Sum256([]byte(token))
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.byHash[h]; ok {
		s.removeLocked(e)
	}
}

func (s *sessions) ended(se *session, now time.Time) bool {
	return now.Sub(se.usedAt) > s.idle || now.Sub(se.created) > s.maxAge || now.Before(se.created)
}

// expireLocked drops the ended sessions from the least recently used end.
func (s *sessions) expireLocked(now time.Time) {
	for e := s.lru.Back(); e != nil; {
		prev := e.Prev()
		if s.ended(e.Value.(*session), now) {
			s.removeLocked(e)
			s.expired++
		}
		e = prev
	}
}

func (s *sessions) removeLocked(e *list.Element) {
	delete(s.byHash, e.Value.(*session).hash)
	s.lru.Remove(e)
}

func (s *sessions) stats(now time.Time) (n int, evicted, expired uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(now)
	return s.lru.Len(), s.evicted, s.expired
}

// loginLimiter slows down password guessing: every wrong password costs a
// token from the client's bucket and from a global one, and a password is
// not even checked while either is empty. A client is its address, or its
// /64 for IPv6, since a host picks any address of its /64 at will (RFC
// 8981). The global bucket stops guessing spread over many addresses; while
// it is empty nobody can log in, but sessions made before keep working.
type loginLimiter struct {
	max int

	mu        sync.Mutex
	clients   map[netip.Prefix]*list.Element // of *clientBucket
	lru       list.List
	global    *rate.Limiter
	forgotten uint64
}

type clientBucket struct {
	key netip.Prefix
	lim *rate.Limiter
}

// Per client: 5 guesses at once, then one every 12 s; everyone together:
// 20 at once, then one every 3 s. That is under 30,000 guesses a day, and
// the generated appliance password has 144 random bits.
const (
	clientLoginEvery = 12 * time.Second
	clientLoginBurst = 5
	globalLoginEvery = 3 * time.Second
	globalLoginBurst = 20
)

func newLoginLimiter(max int) *loginLimiter {
	return &loginLimiter{max: max, clients: map[netip.Prefix]*list.Element{}, global: rate.NewLimiter(rate.Every(globalLoginEvery), globalLoginBurst)}
}

func clientKey(a netip.Addr) netip.Prefix {
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// allowed reports whether a password from client may be checked now.
func (l *loginLimiter) allowed(client netip.Addr, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.global.TokensAt(now) < 1 {
		return false
	}
	e, ok := l.clients[clientKey(client)]
	return !ok || e.Value.(*clientBucket).lim.TokensAt(now) >= 1
}

// failed charges a wrong password to client.
func (l *loginLimiter) failed(client netip.Addr, now time.Time) {
	key := clientKey(client)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.global.AllowN(now, 1)
	e, ok := l.clients[key]
	if !ok {
		// A forgotten client starts with a full bucket again, so the
		// least recently seen goes first, and the global bucket still
		// holds.
		for l.lru.Len() >= l.max {
			old := l.lru.Back()
			delete(l.clients, old.Value.(*clientBucket).key)
			l.lru.Remove(old)
			l.forgotten++
		}
		e = l.lru.PushFront(&clientBucket{key: key, lim: rate.NewLimiter(rate.Every(clientLoginEvery), clientLoginBurst)})
		l.clients[key] = e
	}
	l.lru.MoveToFront(e)
	e.Value.(*clientBucket).lim.AllowN(now, 1)
}

func (l *loginLimiter) stats() (tracked int, forgotten uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len(), l.forgotten
}
