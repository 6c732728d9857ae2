// Package web is the gizmo's dashboard and JSON API. It knows nothing of the
// services: the daemon hands it a Backend that reads snapshots of the state
// and applies policy edits.
package web

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"codeberg.org/monostack/gizmo/gizmo/state"
	"codeberg.org/monostack/gizmo/internal/boundedhttp"
	"codeberg.org/monostack/gizmo/internal/sockopt"
	"codeberg.org/monostack/gizmo/web/logring"
	"codeberg.org/monostack/gizmo/web/oui"
	"codeberg.org/monostack/gizmo/web/series"
	"codeberg.org/monostack/gizmo/web/tlscert"
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
	// Settings and RestoreSettings read and replace everything the owner
	// set, for a backup and its restore. A restore is validated as a
	// whole: on an error (wrapping ErrInvalid, one line per bad entry)
	// nothing changes.
	Settings() state.Settings
	RestoreSettings(state.Settings) error
	// SetWANVLAN sets and persists the owner's WAN VLAN (0: none set).
	// When the uplink's VLAN changes with it, commit carries that out
	// (the daemon restarts its services, this server included), so the
	// caller answers first; otherwise commit is nil.
	SetWANVLAN(id uint16) (commit func(), err error)
	// Findings are what the daemon's plan functions find in the state
	// now, for the pages.
	Findings() Findings
}

// Config configures the server.
type Config struct {
	Backend Backend
	Logger  *slog.Logger
	// Password guards every change and the per-host details (gokrazy's
	// appliance password).
	Password string
	// Listen lists the addresses to serve on; the daemon passes the LAN's
	// ULA and legacy IPv4 addresses, never the uplink's.
	Listen Listen
	// Hostnames are the names the dashboard answers to besides IP literals,
	// against DNS rebinding; the certificate names them too.
	Hostnames []string
	// TLSCertFile and TLSKeyFile name a certificate the owner provides.
	// Without them, TLSDir keeps the self-signed one made on first boot
	// (web/tlscert), re-issued with the same key when the HTTPS addresses
	// change.
	TLSCertFile, TLSKeyFile string
	TLSDir                  string
	// Limits bound the server; zero fields take DefaultLimits.
	Limits Limits
	// Now is the clock of sessions and the login limiter (tests set it).
	Now func() time.Time
	// Firmware describes the running build, for the overview; nil: not
	// known.
	Firmware func() Firmware
	// Started is when the gizmo process started.
	Started time.Time
	// Log holds the process's recent log lines for the log page; nil:
	// the page says there are none.
	Log *logring.Ring
	// UptimeFile is the kernel's uptime, "/proc/uptime" when empty.
	UptimeFile string
}

// Listen is where the dashboard listens: plain HTTP serves the read-only
// pages, HTTPS everything.
type Listen struct {
	HTTP, HTTPS []string
}

func (l Listen) equal(o Listen) bool {
	return slices.Equal(l.HTTP, o.HTTP) && slices.Equal(l.HTTPS, o.HTTPS)
}

func (l Listen) clone() Listen {
	return Listen{slices.Clone(l.HTTP), slices.Clone(l.HTTPS)}
}

// Server serves the dashboard and API.
type Server struct {
	cfg     Config
	log     *slog.Logger
	limits  Limits
	now     func() time.Time
	handler http.Handler
	pages   map[string]*template.Template
	oui     oui.Table
	stats   webStats

	// tls is the dashboard's identity: a store of the self-signed one, or
	// the owner's certificate (static).
	tls    *tlscert.Store
	static *tlscert.Identity

	sessions *sessions
	logins   *loginLimiter

	mu     sync.Mutex
	listen Listen
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
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	lim := cfg.Limits.withDefaults()
	s := &Server{cfg: cfg, log: log.With("service", "web"), limits: lim, now: now,
		listen: cfg.Listen.clone(), relist: make(chan struct{}, 1),
		sessions: newSessions(lim.Sessions, lim.SessionIdle, lim.SessionMaxAge),
		logins:   newLoginLimiter(lim.LoginClients),
	}
	switch {
	case cfg.TLSCertFile != "" || cfg.TLSKeyFile != "":
		id, err := tlscert.Load(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("web: %w", err)
		}
		s.static = &id
		s.logIdentity(id, "the owner's certificate")
	case cfg.TLSDir != "":
		st, issued, err := tlscert.Open(cfg.TLSDir, s.certNames(cfg.Listen.HTTPS))
		if err != nil {
			return nil, fmt.Errorf("web: %w", err)
		}
		s.tls = st
		id, _ := st.Current()
		what := "certificate"
		if issued {
			what = "made a new certificate"
		}
		s.logIdentity(id, what)
	case len(cfg.Listen.HTTPS) > 0:
		return nil, errors.New("web: HTTPS listeners without a certificate (set TLSDir or TLSCertFile and TLSKeyFile)")
	}
	s.pages = pages()
	s.handler = s.routes()
	return s, nil
}

// logIdentity puts the fingerprints on the log, which the serial console
// shows: the owner compares them with what the browser or `image update`
// sees on first contact.
func (s *Server) logIdentity(id tlscert.Identity, what string) {
	s.log.Info("dashboard TLS "+what, "public_key_sha256", id.PublicKeySHA256(), "cert_sha256", id.CertSHA256(),
		"names", strings.Join(id.Cert.Leaf.DNSNames, ","), "addresses", strs(id.Cert.Leaf.IPAddresses))
}

// certNames are the names the certificate must carry: the host names and
// the HTTPS listen addresses (the unspecified address names nothing).
func (s *Server) certNames(https []string) tlscert.Names {
	n := tlscert.Names{DNS: s.cfg.Hostnames}
	for _, a := range https {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			continue
		}
		if ip, err := netip.ParseAddr(host); err == nil && !ip.IsUnspecified() {
			n.IPs = append(n.IPs, ip.WithZone(""))
		}
	}
	return n
}

// Identity is the dashboard's current TLS identity (zero without TLS).
func (s *Server) Identity() tlscert.Identity {
	if s.static != nil {
		return *s.static
	}
	if s.tls == nil {
		return tlscert.Identity{}
	}
	id, err := s.tls.Current()
	if err != nil {
		s.log.Warn("reloading the TLS certificate failed; keeping the old one", "err", err)
	}
	return id
}

// Handler returns the server's handler, for tests.
func (s *Server) Handler() http.Handler { return s.handler }

// SetListen changes the addresses to serve on (the LAN addresses can
// change); a new HTTPS address gets a certificate that names it.
func (s *Server) SetListen(l Listen) {
	s.mu.Lock()
	same := l.equal(s.listen)
	s.listen = l.clone()
	s.mu.Unlock()
	if same {
		return
	}
	if s.tls != nil {
		if id, issued, err := s.tls.Want(s.certNames(l.HTTPS)); err != nil {
			s.log.Warn("cannot re-issue the TLS certificate for the new addresses", "err", err)
		} else if issued {
			s.logIdentity(id, "re-issued the certificate for new addresses")
		}
	}
	select {
	case s.relist <- struct{}{}:
	default:
	}
}

func (s *Server) currentListen() Listen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listen.clone()
}

// Run serves until ctx is done, re-listening when the addresses change.
func (s *Server) Run(ctx context.Context) error {
	for {
		l := s.currentListen()
		sctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for _, a := range l.HTTP {
			wg.Go(func() { s.serve(sctx, a, schemeHTTP) })
		}
		for _, a := range l.HTTPS {
			wg.Go(func() { s.serve(sctx, a, schemeHTTPS) })
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

type scheme string

const (
	schemeHTTP  scheme = "http"
	schemeHTTPS scheme = "https"
)

func (s *Server) serve(ctx context.Context, addr string, sch scheme) {
	// Freebind: the LAN addresses may not be configured yet when we start.
	lc := net.ListenConfig{Control: sockopt.Control(sockopt.Freebind)}
	for {
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err == nil {
			s.log.Info("serving dashboard", "addr", addr, "scheme", sch)
			if err := s.serveListener(ctx, ln, sch); err != nil {
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

// serveListener serves one listener until ctx is done, with the server's
// bounds: a cap on open connections and timeouts for every phase.
func (s *Server) serveListener(ctx context.Context, ln net.Listener, sch scheme) error {
	var tlsConfig *tls.Config
	if sch == schemeHTTPS {
		tlsConfig = s.tlsConfig()
	}
	return boundedhttp.Serve(ctx, ln, s.handler, s.limits.Bounds, s.stats.listener(sch), s.log, tlsConfig)
}

func (s *Server) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			id := s.Identity()
			if id.Cert.Leaf == nil {
				return nil, errors.New("web: no TLS certificate")
			}
			return &id.Cert, nil
		},
	}
}

// httpsURL is where a plain-HTTP request goes on HTTPS: the same host and
// path on the HTTPS port, or "" when the gizmo serves no HTTPS.
func (s *Server) httpsURL(r *http.Request) string {
	l := s.currentListen()
	if len(l.HTTPS) == 0 {
		return ""
	}
	_, port, err := net.SplitHostPort(l.HTTPS[0])
	if err != nil {
		return ""
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(r.Host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if port == "443" {
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
	} else {
		host = net.JoinHostPort(host, port)
	}
	u := url.URL{Scheme: "https", Host: host, Path: r.URL.Path, RawQuery: r.URL.RawQuery}
	return u.String()
}
