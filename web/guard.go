package web

import (
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// sessionCookie holds a login session's token.
const sessionCookie = "gizmo_session"

// isWrite reports whether a request may change something (RFC 9110 §9.2.1:
// GET, HEAD and OPTIONS are safe).
func isWrite(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// adminPage reports whether a path only makes sense over HTTPS (logging in
// and out), so that plain HTTP redirects it there.
func adminPage(path string) bool {
	return path == "/login" || path == "/logout"
}

// guard applies the rules every request meets before its handler: the
// security headers, the DNS rebinding check, plain HTTP is read-only (and
// sends logins to HTTPS), writes pass the CSRF check and have a bounded
// body.
func (s *Server) guard(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.stats.crossOrigin.Add(1)
		http.Error(w, "cross-origin request refused (CSRF protection)", http.StatusForbidden)
	}))
	protected := cop.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The toggle forms must not be framed by another site, or a page
		// could trick the owner into clicking them: same-origin framing
		// passes the CSRF check.
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if !s.allowedHost(r.Host) {
			http.Error(w, fmt.Sprintf("unknown host %q (DNS rebinding protection)", r.Host), http.StatusMisdirectedRequest)
			return
		}
		if r.TLS == nil {
			// Anyone who can take the gizmo's address on the LAN reads
			// plain HTTP: no password and no session may cross it.
			target := s.httpsURL(r)
			if isWrite(r) {
				s.stats.plainWritesRefused.Add(1)
				msg := "changes need HTTPS: this gizmo serves no HTTPS"
				if target != "" {
					msg = "changes need HTTPS (" + target + "); plain HTTP is read-only"
				}
				http.Error(w, msg, http.StatusForbidden)
				return
			}
			if adminPage(r.URL.Path) && target != "" {
				http.Redirect(w, r, target, http.StatusFound)
				return
			}
		}
		if isWrite(r) {
			// Without Sec-Fetch-Site, the cross-origin check compares
			// Origin's host only: a form on one of the gizmo's own
			// plain-HTTP pages, which anyone on the LAN can forge, would
			// pass it. (With it, "same-origin" includes the scheme.)
			if o := r.Header.Get("Origin"); o != "" && r.Header.Get("Sec-Fetch-Site") == "" && !strings.HasPrefix(o, "https://") {
				s.stats.crossOrigin.Add(1)
				http.Error(w, "cross-origin request refused (CSRF protection): changes come from HTTPS pages only", http.StatusForbidden)
				return
			}
			limitBody(w, r, s.bodyLimit(r), &s.stats.bodyTooLarge)
		}
		protected.ServeHTTP(w, r)
	})
}

// bodyLimit is how large a write's body may be: a restore carries every
// host's settings, anything else Limits.MaxBody.
func (s *Server) bodyLimit(r *http.Request) int64 {
	if (r.Method == http.MethodPost && r.URL.Path == "/settings/restore") || (r.Method == http.MethodPut && r.URL.Path == "/api/settings") {
		return max(s.limits.MaxBody, maxSettingsBody)
	}
	return s.limits.MaxBody
}

// clientAddr is the address a request came from.
func clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.IPv4Unspecified()
	}
	return ap.Addr()
}

// checkPassword compares a password with the appliance password in constant
// time, behind the login limiter: throttled means it was not even compared.
func (s *Server) checkPassword(r *http.Request, pw string) (ok, throttled bool) {
	now := s.now()
	client := clientAddr(r)
	if !s.logins.allowed(client, now) {
		s.stats.loginThrottled.Add(1)
		s.stats.loginThrottledAt.Store(now.UnixNano())
		return false, true
	}
	if subtle.ConstantTimeCompare([]byte(pw), []byte(s.cfg.Password)) == 1 {
		return true, false
	}
	s.stats.loginFailures.Add(1)
	s.logins.failed(client, now)
	s.log.Info("wrong appliance password", "client", client)
	return false, false
}

// authState is what a request proved about its sender.
type authState int

const (
	anonymous      authState = iota // no credentials: the public view
	loggedIn                        // a live session, or the password over HTTPS
	badCredentials                  // credentials that were refused (already answered)
)

// authenticate looks at a request's session cookie and basic auth. Both
// count only over HTTPS: the cookie is Secure, and a password sent over
// plain HTTP is refused even when it is right. A refusal is written to w.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) authState {
	if r.TLS == nil {
		if _, _, ok := r.BasicAuth(); ok {
			http.Error(w, "the password is only accepted over HTTPS ("+s.httpsURL(r)+")", http.StatusForbidden)
			return badCredentials
		}
		return anonymous
	}
	if c, err := r.Cookie(sessionCookie); err == nil && s.sessions.valid(c.Value, s.now()) {
		return loggedIn
	}
	_, pw, ok := r.BasicAuth()
	if !ok {
		return anonymous
	}
	good, throttled := s.checkPassword(r, pw)
	switch {
	case good:
		return loggedIn
	case throttled:
		tooManyAttempts(w)
	default:
		w.Header().Set("WWW-Authenticate", `Basic realm="gizmo"`)
		writeError(w, http.StatusUnauthorized, "wrong appliance password")
	}
	return badCredentials
}

func tooManyAttempts(w http.ResponseWriter) {
	w.Header().Set("Retry-After", strconv.Itoa(int(clientLoginEvery.Seconds())))
	http.Error(w, "too many wrong passwords: wait and try again", http.StatusTooManyRequests)
}

// requireLogin lets a write through with a session or the password over
// HTTPS, and otherwise answers 401 (API clients get a basic-auth
// challenge, the HTML forms a pointer to the login page).
func (s *Server) requireLogin(w http.ResponseWriter, r *http.Request, what string) bool {
	switch s.authenticate(w, r) {
	case loggedIn:
		return true
	case badCredentials:
		return false
	}
	if strings.HasPrefix(r.URL.Path, "/api/") {
		w.Header().Set("WWW-Authenticate", `Basic realm="gizmo"`)
		writeError(w, http.StatusUnauthorized, "%s needs the appliance password (log in, or HTTP basic auth over HTTPS)", what)
	} else {
		http.Error(w, what+" needs a login: https://"+r.Host+"/login", http.StatusUnauthorized)
	}
	return false
}

// viewer reports whether a read may see per-host details; with refused
// credentials the refusal has been written and ok is false.
func (s *Server) viewer(w http.ResponseWriter, r *http.Request) (details, ok bool) {
	switch s.authenticate(w, r) {
	case loggedIn:
		return true, true
	case badCredentials:
		return false, false
	}
	return false, true
}

// safeNext is where a login returns to: a path on this server, never
// another site ("//evil.example" and "/\evil.example" are other sites to a
// browser).
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.ContainsAny(next, "\r\n") {
		return "/"
	}
	return next
}

// hasSession reports whether a request carries a live session cookie.
func (s *Server) hasSession(r *http.Request) bool {
	if r.TLS == nil {
		return false
	}
	c, err := r.Cookie(sessionCookie)
	return err == nil && s.sessions.valid(c.Value, s.now())
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if s.hasSession(r) {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	s.renderLogin(w, r, http.StatusOK, "", safeNext(r.URL.Query().Get("next")))
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, code int, msg, next string) {
	w.WriteHeader(code)
	s.render(w, "login", struct {
		pageBase
		Error, Next string
	}{s.base(r, "Log in", "login", 0), msg, next})
}

// login checks the password form and starts a session: a random token in a
// cookie that scripts cannot read (HttpOnly), that never crosses plain
// HTTP (Secure) and that no other site's page sends (SameSite=Strict).
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form: "+err.Error(), http.StatusBadRequest)
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	good, throttled := s.checkPassword(r, r.PostForm.Get("password"))
	if throttled {
		w.Header().Set("Retry-After", strconv.Itoa(int(clientLoginEvery.Seconds())))
		s.renderLogin(w, r, http.StatusTooManyRequests, "Too many wrong passwords. Wait a minute and try again.", next)
		return
	}
	if !good {
		s.renderLogin(w, r, http.StatusUnauthorized, "Wrong password.", next)
		return
	}
	token := s.sessions.create(s.now())
	s.stats.logins.Add(1)
	s.log.Info("logged in", "client", clientAddr(r))
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: token, Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.sessions.end(c.Value)
		s.stats.logouts.Add(1)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
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
