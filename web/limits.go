package web

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"codeberg.org/monostack/gizmo/internal/boundedhttp"
)

// Limits bound what one client, or many, can make the server hold.
type Limits struct {
	// Bounds cap each listener's connections and time every phase of
	// one; ReadHeaderTimeout also bounds the TLS handshake.
	boundedhttp.Bounds
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
	Bounds: boundedhttp.Bounds{
		MaxConns:          64,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
	},
	MaxBody:       64 << 10,
	Sessions:      32,
	SessionIdle:   12 * time.Hour,
	SessionMaxAge: 7 * 24 * time.Hour,
	LoginClients:  1024,
}

// withDefaults is l with DefaultLimits' value for every bound not set
// (zero or less).
func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	l.Bounds = l.Bounds.WithDefaults(d.Bounds)
	boundedhttp.OrDefault(&l.MaxBody, d.MaxBody)
	boundedhttp.OrDefault(&l.Sessions, d.Sessions)
	boundedhttp.OrDefault(&l.SessionIdle, d.SessionIdle)
	boundedhttp.OrDefault(&l.SessionMaxAge, d.SessionMaxAge)
	boundedhttp.OrDefault(&l.LoginClients, d.LoginClients)
	return l
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
