// Package boundedhttp serves HTTP on a home network's LAN with bounds no
// client can outgrow: a cap on the connections open at once and a timeout
// for every phase of a connection, each counted when it bites.
package boundedhttp

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Bounds are one server's limits.
type Bounds struct {
	// MaxConns caps the open connections of each listener; further ones
	// wait in the kernel's accept queue.
	MaxConns int
	// ReadHeaderTimeout bounds the TLS handshake and the request header
	// (a slowloris client is closed after it), ReadTimeout the whole
	// request, WriteTimeout the answer, IdleTimeout a kept-alive
	// connection between requests.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	MaxHeaderBytes                                            int
}

// OrDefault sets *v, a bound, to def while it is not set (zero or less),
// so that a zero value in a configuration means "the default".
func OrDefault[T ~int | ~int64 | ~float64](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Counters count one listener's connections. Safe for concurrent use.
type Counters struct {
	Open     atomic.Int64
	Accepted atomic.Uint64
	// Limited counts accepts that found every slot taken and had to
	// wait; LimitedAt is when that last happened (Unix nanoseconds).
	Limited   atomic.Uint64
	LimitedAt atomic.Int64
	// Timeouts counts connections a read deadline ended (a slow
	// handshake or header, a stalled body, an idle client).
	Timeouts atomic.Uint64
}

// Serve serves h on ln with b's bounds until ctx is done or the listener
// fails, counting into c. With tlsConfig set it serves HTTPS. Errors the
// server logs (a browser refusing a self-signed certificate ends each
// visit with a handshake error) go to log at debug level: they are no
// warning.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, b Bounds, c *Counters, log *slog.Logger, tlsConfig *tls.Config) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: b.ReadHeaderTimeout,
		ReadTimeout:       b.ReadTimeout,
		// Nothing served this way streams: every answer is a page, a
		// document or a short reply.
		WriteTimeout:   b.WriteTimeout,
		IdleTimeout:    b.IdleTimeout,
		MaxHeaderBytes: b.MaxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		TLSConfig:      tlsConfig,
	}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	capped := newLimitListener(ln, b.MaxConns, c)
	var err error
	if tlsConfig != nil {
		err = srv.ServeTLS(capped, "", "")
	} else {
		err = srv.Serve(capped)
	}
	if errors.Is(err, http.ErrServerClosed) || ctx.Err() != nil {
		return nil
	}
	return err
}

// limitListener caps the connections open at once. It waits for a free
// slot before accepting, as golang.org/x/net/netutil.LimitListener does,
// and also counts how often the cap was hit.
type limitListener struct {
	net.Listener
	slots chan struct{}
	c     *Counters
	done  chan struct{}
	close sync.Once
}

func newLimitListener(ln net.Listener, n int, c *Counters) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), c: c, done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	default:
		l.c.Limited.Add(1)
		l.c.LimitedAt.Store(time.Now().UnixNano())
		select {
		case l.slots <- struct{}{}:
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
	conn, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	l.c.Accepted.Add(1)
	l.c.Open.Add(1)
	return &limitConn{Conn: conn, l: l}, nil
}

func (l *limitListener) Close() error {
	l.close.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitConn gives its slot back on the first Close; the server may close
// a connection from more than one goroutine.
type limitConn struct {
	net.Conn
	l        *limitListener
	release  sync.Once
	timedOut atomic.Bool
}

func (c *limitConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if errors.Is(err, os.ErrDeadlineExceeded) && c.timedOut.CompareAndSwap(false, true) {
		c.l.c.Timeouts.Add(1)
	}
	return n, err
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.release.Do(func() {
		c.l.c.Open.Add(-1)
		<-c.l.slots
	})
	return err
}

// WithDefaults is b with d's value for every bound b does not set.
func (b Bounds) WithDefaults(d Bounds) Bounds {
	OrDefault(&b.MaxConns, d.MaxConns)
	OrDefault(&b.ReadHeaderTimeout, d.ReadHeaderTimeout)
	OrDefault(&b.ReadTimeout, d.ReadTimeout)
	OrDefault(&b.WriteTimeout, d.WriteTimeout)
	OrDefault(&b.IdleTimeout, d.IdleTimeout)
	OrDefault(&b.MaxHeaderBytes, d.MaxHeaderBytes)
	return b
}
