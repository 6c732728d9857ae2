// Package web is the gizmo's dashboard and JSON API. It knows nothing of the
// services: the daemon hands it a Backend that reads snapshots of the state
// and applies policy edits.
package web

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/web/oui"
	"codeberg.org/monostack/gizmo/web/series"
	"golang.org/x/sys/unix"
)

// Backend is the daemon as the web side sees it.
type Backend interface {
	// Snapshot returns a copy of the state that the caller may keep.
	Snapshot() state.State
	// SetPolicy changes and persists one host's policy.
	SetPolicy(mac string, p state.HostPolicy) error
	// Insights returns the services' counters in the dashboard's terms.
	Insights() Insights
	// History is the traffic history.
	History() *series.Store
	// InboundRules and SetInboundRules read and replace the owner's
	// inbound firewall rules (token and subnet rules).
	InboundRules() []state.InboundRule
	SetInboundRules([]state.InboundRule) error
	// ChangeRoles moves the WAN role to the LAN port wan. It validates
	// and persists the request; commit carries it out (the daemon
	// restarts its services, this server included), so the caller
	// answers first.
	ChangeRoles(wan string) (commit func(), err error)
}

// Config configures the server.
type Config struct {
	Backend Backend
	Logger  *slog.Logger
	// Password guards every change (gokrazy's appliance password).
	Password string
	// Listen lists the addresses to serve on; the daemon passes the LAN's
	// ULA and legacy IPv4 addresses, never the uplink's.
	Listen []string
	// Hostnames are the names the dashboard answers to besides IP literals,
	// against DNS rebinding.
	Hostnames []string
}

// Server serves the dashboard and API.
type Server struct {
	cfg     Config
	log     *slog.Logger
	handler http.Handler
	pages   map[string]*template.Template
	oui     oui.Table

	mu     sync.Mutex
	listen []string
	relist chan struct{}
}

// New returns a server; Run serves it.
func New(cfg Config) (*Server, error) {
	if cfg.Backend == nil {
		return nil, errors.New("web: no backend")
	}
	if cfg.Password == "" {
		return nil, errors.New("web: no password: changes could not be protected")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg, log: log.With("service", "web"), listen: cfg.Listen, relist: make(chan struct{}, 1)}
	s.pages = pages()
	s.handler = s.routes()
	return s, nil
}

// Handler returns the server's handler, for tests.
func (s *Server) Handler() http.Handler { return s.handler }

// SetListen changes the addresses to serve on (the LAN addresses can change).
func (s *Server) SetListen(addrs []string) {
	s.mu.Lock()
	same := strings.Join(addrs, ",") == strings.Join(s.listen, ",")
	s.listen = append([]string(nil), addrs...)
	s.mu.Unlock()
	if !same {
		select {
		case s.relist <- struct{}{}:
		default:
		}
	}
}

// Run serves until ctx is done, re-listening when the addresses change.
func (s *Server) Run(ctx context.Context) error {
	for {
		s.mu.Lock()
		addrs := append([]string(nil), s.listen...)
		s.mu.Unlock()
		sctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for _, a := range addrs {
			wg.Go(func() { s.serve(sctx, a) })
		}
		select {
		case <-ctx.Done():
		case <-s.relist:
		}
		cancel()
		wg.Wait()
		if ctx.Err() != nil {
			return nil
		}
	}
}

func (s *Server) serve(ctx context.Context, addr string) {
	// Freebind: the LAN addresses may not be configured yet when we start.
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		c.Control(func(fd uintptr) {
			if strings.HasSuffix(network, "6") {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
			} else {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
			}
		})
		return serr
	}}
	for {
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err == nil {
			srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
			go func() { <-ctx.Done(); srv.Close() }()
			s.log.Info("serving dashboard", "addr", addr)
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Warn("dashboard listener failed", "addr", addr, "err", err)
			}
		} else {
			s.log.Warn("cannot listen; retrying", "addr", addr, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(3 * time.Second):
		}
	}
}

// allowedHost guards against DNS rebinding: a page from another site that
// rebinds its name to the gizmo still sends its own name in Host.
func (s *Server) allowedHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	for _, n := range s.cfg.Hostnames {
		if strings.EqualFold(host, n) {
			return true
		}
	}
	return strings.EqualFold(host, "localhost")
}

// authorized checks the appliance password (HTTP basic auth, any user name,
// as gokrazy's own UI does).
func (s *Server) authorized(r *http.Request) bool {
	_, pw, ok := r.BasicAuth()
	return ok && subtle.ConstantTimeCompare([]byte(pw), []byte(s.cfg.Password)) == 1
}

func (s *Server) guard(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	protected := cop.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The toggle forms must not be framed by another site, or a page
		// could trick the owner (whose browser has the password cached)
		// into clicking them: same-origin framing passes the CSRF check.
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if !s.allowedHost(r.Host) {
			http.Error(w, fmt.Sprintf("unknown host %q (DNS rebinding protection)", r.Host), http.StatusMisdirectedRequest)
			return
		}
		protected.ServeHTTP(w, r)
	})
}
