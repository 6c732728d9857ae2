package web

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Limits bound what one client, or many, can make the server hold.
type Limits struct {
	// MaxConns caps the open connections of each listener; further
	// connections wait in the kernel's accept queue.
	MaxConns int
	// ReadHeaderTimeout bounds the TLS handshake and the request header
	// (a slowloris client is closed after it), ReadTimeout the whole
	// request, WriteTimeout the answer, IdleTimeout a kept-alive
	// connection between requests.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	MaxHeaderBytes                                            int
	// MaxBody bounds the body of every write.
	MaxBody int64
	// Sessions is how many login sessions are kept (the least recently
	// used one goes first); a session ends after SessionIdle without use
	// and SessionMaxAge after the login.
	Sessions                   int
	SessionIdle, SessionMaxAge time.Duration
	// LoginClients is how many client addresses the login limiter tracks.
	LoginClients int
}

// DefaultLimits suit a home network: a handful of browsers and scripts.
var DefaultLimits = Limits{
	MaxConns:          64,
	ReadHeaderTimeout: 10 * time.Second,
	ReadTimeout:       30 * time.Second,
	WriteTimeout:      60 * time.Second,
	IdleTimeout:       120 * time.Second,
	MaxHeaderBytes:    16 << 10,
	MaxBody:           64 << 10,
	Sessions:          32,
	SessionIdle:       12 * time.Hour,
	SessionMaxAge:     7 * 24 * time.Hour,
	LoginClients:      1024,
}

// withDefaults is l with DefaultLimits' value for every bound not set
// (zero or less).
func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	orDefault(&l.MaxConns, d.MaxConns)
	orDefault(&l.ReadHeaderTimeout, d.ReadHeaderTimeout)
	orDefault(&l.ReadTimeout, d.ReadTimeout)
	orDefault(&l.WriteTimeout, d.WriteTimeout)
	orDefault(&l.IdleTimeout, d.IdleTimeout)
	orDefault(&l.MaxHeaderBytes, d.MaxHeaderBytes)
	orDefault(&l.MaxBody, d.MaxBody)
	orDefault(&l.Sessions, d.Sessions)
	orDefault(&l.SessionIdle, d.SessionIdle)
	orDefault(&l.SessionMaxAge, d.SessionMaxAge)
	orDefault(&l.LoginClients, d.LoginClients)
	return l
}

// orDefault sets *v, a bound, to def while it is not set (zero or less).
func orDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// listenerStats count one kind of listener's connections.
type listenerStats struct {
	open     atomic.Int64
	accepted atomic.Uint64
	// limited counts accepts that found every slot taken and had to wait,
	// limitedAt is when that last happened (Unix nanoseconds).
	limited   atomic.Uint64
	limitedAt atomic.Int64
	// timeouts counts connections closed because a deadline passed (a
	// slow handshake or header, a stalled body, an idle client).
	timeouts atomic.Uint64
}

// limitListener caps the connections open at once. It waits for a free
// slot before accepting, as golang.org/x/net/netutil.LimitListener does,
// and also counts how often the cap was hit.
type limitListener struct {
	net.Listener
	slots chan struct{}
	stats *listenerStats
	done  chan struct{}
	close sync.Once
}

func newLimitListener(ln net.Listener, n int, stats *listenerStats) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), stats: stats, done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	default:
		l.stats.limited.Add(1)
		l.stats.limitedAt.Store(time.Now().UnixNano())
		select {
		case l.slots <- struct{}{}:
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	l.stats.accepted.Add(1)
	l.stats.open.Add(1)
	return &limitConn{Conn: c, l: l}, nil
}

func (l *limitListener) Close() error {
	l.close.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	l        *limitListener
	release  sync.Once
	timedOut atomic.Bool
}

func (c *limitConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if ne, ok := err.(net.Error); ok && ne.Timeout() && c.timedOut.CompareAndSwap(false, true) {
		c.l.stats.timeouts.Add(1)
	}
	return n, err
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.release.Do(func() {
		c.l.stats.open.Add(-1)
		<-c.l.slots
	})
	return err
}

// limitBody bounds a write's body and counts the requests that went over.
func limitBody(w http.ResponseWriter, r *http.Request, n int64, tooLarge *atomic.Uint64) {
	r.Body = &countedBody{ReadCloser: http.MaxBytesReader(w, r.Body, n), tooLarge: tooLarge}
}

type countedBody struct {
	io.ReadCloser
	tooLarge *atomic.Uint64
	counted  bool
}

func (b *countedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var mbe *http.MaxBytesError
	if !b.counted && errors.As(err, &mbe) {
		b.counted = true
		b.tooLarge.Add(1)
	}
	return n, err
}
