// Package inetweb is the lab internet's HTTP server: one listener per
// server address in gz-inet. Each reply names the server and the client's
// address as the server saw it, so a test can tell which path (native
// IPv6, NAT64, NAT44, CLAT) a request took.
package inetweb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// A Site is a named server address, e.g. {"v4only", 198.51.100.80:80}.
type Site struct {
	Name string
	Addr netip.AddrPort
}

// ParseSite parses "name=addr:port" (IPv6 in brackets).
func ParseSite(s string) (Site, error) {
	name, addr, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return Site{}, fmt.Errorf("inetweb: %q: want name=address:port", s)
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return Site{}, fmt.Errorf("inetweb: %q: %w", s, err)
	}
	return Site{Name: name, Addr: ap}, nil
}

// maxBytes caps /bytes/N so a typo cannot make the server stream forever.
const maxBytes = 1 << 30

// Handler answers for one site:
//
//	GET /          "server=<ip> name=<name> client=<ip>\n"
//	GET /bytes/N   N bytes of 'x' (for throughput benchmarks)
func Handler(site Site) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		client := r.RemoteAddr
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
			client = ap.Addr().String()
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "server=%s name=%s client=%s\n", site.Addr.Addr(), site.Name, client)
	})
	mux.HandleFunc("GET /bytes/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.PathValue("n"), 10, 64)
		if err != nil || n < 0 || n > maxBytes {
			http.Error(w, "bytes: want 0 <= N <= 2^30", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		chunk := []byte(strings.Repeat("x", 32<<10))
		for n > 0 {
			c := chunk
			if int64(len(c)) > n {
				c = c[:n]
			}
			if _, err := w.Write(c); err != nil {
				return
			}
			n -= int64(len(c))
		}
	})
	return mux
}

// Serve listens on every site and serves until ctx is done.
func Serve(ctx context.Context, logger *slog.Logger, sites []Site) error {
	if len(sites) == 0 {
		return errors.New("inetweb: no sites")
	}
	errc := make(chan error, len(sites))
	var servers []*http.Server
	for _, s := range sites {
		ln, err := net.Listen("tcp", s.Addr.String())
		if err != nil {
			for _, srv := range servers {
				srv.Close()
			}
			return fmt.Errorf("inetweb: %w", err)
		}
		srv := &http.Server{Handler: Handler(s), ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		logger.Info("serving", "site", s.Name, "addr", s.Addr.String())
		go func() { errc <- srv.Serve(ln) }()
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		for _, srv := range servers {
			srv.Close()
		}
		return fmt.Errorf("inetweb: %w", err)
	}
	for _, srv := range servers {
		srv.Close()
	}
	return nil
}
