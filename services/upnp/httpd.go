package upnp

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"codeberg.org/monostack/gizmo/internal/boundedhttp"
)

// Reasons for refusing an HTTP request (Stats.Refused).
const (
	refusedRateLimited  = "rate_limited"
	refusedMalformed    = "malformed"
	refusedBodyTooLarge = "body_too_large"
	refusedBadHost      = "bad_host"
	refusedCrossSite    = "cross_site"
)

func (s *Service) serveHTTP(ctx context.Context, ln net.Listener, h http.Handler) error {
	return boundedhttp.Serve(ctx, ln, h, s.limits.Bounds, &s.conns, s.log, nil)
}

// handler serves the plan's descriptions and control URL, behind guard;
// flows (nil: unreadable) answers CheckPinholeWorking.
func (s *Service) handler(p Plan, flows inboundFlows) http.Handler {
	desc, scpdXML := description(p), scpd()
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+descPath, func(w http.ResponseWriter, r *http.Request) { writeXML(w, http.StatusOK, desc) })
	mux.HandleFunc("GET "+scpdPath, func(w http.ResponseWriter, r *http.Request) { writeXML(w, http.StatusOK, scpdXML) })
	mux.HandleFunc("POST "+controlPath, func(w http.ResponseWriter, r *http.Request) { s.control(w, r, flows) })
	return s.guard(p, mux)
}

// guard refuses what is no control point's request before it reaches the
// handlers:
//   - a Host that is not one of the listen addresses: a web page that
//     rebound its own name to the gizmo's address (DNS rebinding) would
//     otherwise send SOAP from the host's own address;
//   - anything a browser marks as a web page's request (Origin,
//     Sec-Fetch-Site): UPnP control points send neither;
//   - more than a client's share of requests (Limits.Requests).
func (s *Service) guard(p Plan, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !knownHost(r.Host, p) {
			s.refused(refusedBadHost)
			http.Error(w, "unknown host", http.StatusMisdirectedRequest)
			return
		}
		if r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") != "" {
			s.refused(refusedCrossSite)
			http.Error(w, "not for web pages", http.StatusForbidden)
			return
		}
		src := remoteAddr(r)
		if !s.requests.allow(src, time.Now()) {
			s.refused(refusedRateLimited)
			w.Header().Set("Retry-After", "1")
			http.Error(w, "too many requests", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// knownHost reports whether the Host header names one of the plan's
// listen addresses (with the plan's port, or none).
func knownHost(host string, p Plan) bool {
	h, port, err := net.SplitHostPort(host)
	if err != nil {
		h, port = host, ""
		if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
			h = h[1 : len(h)-1]
		}
	}
	if port != "" && port != strconv.Itoa(int(p.Port)) {
		return false
	}
	a, err := netip.ParseAddr(h)
	return err == nil && slices.Contains(p.Listen, a.Unmap())
}

func remoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap().WithZone("")
}

// control answers a SOAP control request (UDA 1.1 §3.2).
func (s *Service) control(w http.ResponseWriter, r *http.Request, flows inboundFlows) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.refused(refusedBodyTooLarge)
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		s.refused(refusedMalformed)
		http.Error(w, "reading the body failed", http.StatusBadRequest)
		return
	}
	c, err := parseCall(body, r.Header.Get("Soapaction"), firewallService)
	var f *faultError
	switch {
	case errors.As(err, &f):
		s.answered(c.Action, f, "")
		writeXML(w, http.StatusInternalServerError, encodeFault(f.code))
		return
	case err != nil:
		s.refused(refusedMalformed)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	src := remoteAddr(r)
	out, f, reason := s.act(src, c, flows)
	s.answered(c.Action, f, reason)
	if f != nil {
		// The owner's policy and the bounds refusing an app are worth a
		// line in the log ("why can my game not open its port?"); an
		// app's malformed argument is not.
		lvl := slog.LevelDebug
		if reason != "" {
			lvl = slog.LevelInfo
		}
		s.log.Log(r.Context(), lvl, "UPnP request refused", "action", c.Action, "client", src, "code", f.code, "reason", reason, "err", f.msg)
		writeXML(w, http.StatusInternalServerError, encodeFault(f.code))
		return
	}
	writeXML(w, http.StatusOK, encodeResponse(firewallService, c.Action, out))
}

// answered counts a control request by action and result, and a refusal
// by its reason.
func (s *Service) answered(action string, f *faultError, reason string) {
	if _, known := actions[action]; !known {
		action = "other" // the label's values stay bounded
	}
	result := "ok"
	if f != nil {
		result = strconv.Itoa(f.code)
	}
	s.count(func(st *Stats) {
		st.Requests[RequestKey{action, result}]++
		if reason != "" {
			st.Refused[reason]++
		}
	})
}

// writeXML sends an XML body with its length, so that minimal clients
// need no chunked decoding.
func writeXML(w http.ResponseWriter, code int, b []byte) {
	w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Header().Set("Ext", "")
	w.Header().Set("Server", serverHeader)
	w.WriteHeader(code)
	w.Write(b)
}
