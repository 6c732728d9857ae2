package updater

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/netutil"
	"golang.org/x/time/rate"
)

// Server is the appliance's side of a signed update. The generated init
// runs it over HTTPS, in front of gokrazy's own update handlers, which are
// kept off the network: gokrazy installs any image that comes with the
// password, this server only one signed with the key the running image
// was built with.
//
//   - PUT /update/root streams into gokrazy's handler (the inactive root
//     partition) while hashing; a signature that does not verify wipes the
//     partition's start again, so that it can never be booted.
//   - PUT /update/boot is written to the active boot partition, so it is
//     spooled and verified first, and only then handed to gokrazy.
//   - POST /update/switch and /update/testboot only follow a verified root
//     written since this boot.
//   - GET /update/features, POST /reboot and gokrazy's read-only status
//     pages pass through; gokrazy's other write endpoints (/update/mbr,
//     /update/bootonly, /update/device-specific/, /uploadtemp/, /divert)
//     are not served, because they would write or run unsigned code.
type Server struct {
	// PublicKey checks the signatures.
	PublicKey ed25519.PublicKey
	// Password guards every request (HTTP basic auth, any user name, as
	// gokrazy's UI).
	Password string
	// Gokrazy serves gokrazy's handlers (http.DefaultServeMux in the init).
	Gokrazy http.Handler
	// SpoolDir holds a boot image until its signature is checked (on
	// /perm: the boot partition is too large for RAM on a small board).
	SpoolDir string
	// MaxBoot bounds a boot image (0: 256 MiB).
	MaxBoot int64
	Logger  *slog.Logger

	once     sync.Once
	handler  http.Handler
	failures *rate.Limiter

	// update serializes the update endpoints; rootVerified says a signed
	// root was written to the inactive partition since this boot.
	update       sync.Mutex
	rootVerified bool
}

func (s *Server) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Handler returns the server's handler.
func (s *Server) Handler() http.Handler {
	s.once.Do(func() {
		// Wrong passwords: 10 at once, then one every 6 s. A password
		// alone installs nothing here, but it still reboots the gizmo.
		s.failures = rate.NewLimiter(rate.Every(6*time.Second), 10)
		mux := http.NewServeMux()
		mux.Handle("GET /update/features", http.HandlerFunc(s.features))
		mux.HandleFunc("PUT /update/root", s.putRoot)
		mux.HandleFunc("PUT /update/boot", s.putBoot)
		mux.HandleFunc("POST /update/switch", s.switchRoot)
		mux.HandleFunc("POST /update/testboot", s.switchRoot)
		mux.Handle("POST /reboot", s.Gokrazy)
		for _, p := range []string{"GET /{$}", "GET /status", "GET /log", "GET /assets/"} {
			mux.Handle(p, s.Gokrazy)
		}
		for _, p := range []string{"/update/mbr", "/update/bootonly", "/update/device-specific/", "/uploadtemp/", "/divert"} {
			mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, r.URL.Path+" is not served over the network: it would bypass the signature check", http.StatusForbidden)
			})
		}
		s.handler = s.auth(mux)
	})
	return s.handler
}

func (s *Server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.failures.Tokens() < 1 {
			w.Header().Set("Retry-After", "6")
			http.Error(w, "too many wrong passwords: wait and try again", http.StatusTooManyRequests)
			return
		}
		_, pw, ok := r.BasicAuth()
		if !ok || s.Password == "" || subtle.ConstantTimeCompare([]byte(pw), []byte(s.Password)) != 1 {
			if ok {
				s.failures.Allow()
				s.log().Info("update API: wrong password", "client", r.RemoteAddr)
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="gokrazy"`)
			http.Error(w, "the update API needs the appliance password", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// FeatureSigned is added to gokrazy's update features: this gizmo takes
// signed images only.
const FeatureSigned = "gizmo-signed"

func (s *Server) features(w http.ResponseWriter, r *http.Request) {
	rec := s.callGokrazy(r.Context(), http.MethodGet, "/update/features", nil, nil)
	if rec.Code != http.StatusOK {
		http.Error(w, rec.Body.String(), rec.Code)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, strings.TrimSpace(rec.Body.String())+FeatureSigned+",")
}

// callGokrazy runs one of gokrazy's handlers in process and returns its
// answer.
func (s *Server) callGokrazy(ctx context.Context, method, path string, body io.Reader, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequestWithContext(ctx, method, "http://gokrazy"+path, body)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	s.Gokrazy.ServeHTTP(rec, req)
	return rec
}

// hashingReader counts and hashes what passes through it.
type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (hr *hashingReader) Read(p []byte) (int, error) {
	n, err := hr.r.Read(p)
	hr.h.Write(p[:n])
	hr.n += int64(n)
	return n, err
}

func (hr *hashingReader) digest() [sha256.Size]byte { return [sha256.Size]byte(hr.h.Sum(nil)) }

// lockUpdate takes the update lock or answers 409.
func (s *Server) lockUpdate(w http.ResponseWriter) bool {
	if !s.update.TryLock() {
		http.Error(w, "another update is in progress", http.StatusConflict)
		return false
	}
	return true
}

// startSignedPut begins an update that writes an image: it takes the
// image's signature from the request and the update lock, or answers the
// request and reports false. The caller unlocks s.update.
func (s *Server) startSignedPut(w http.ResponseWriter, r *http.Request) (sig string, ok bool) {
	sig = r.Header.Get(SignatureHeader)
	if sig == "" {
		http.Error(w, "the image is not signed ("+SignatureHeader+" missing); nothing was written", http.StatusForbidden)
		return "", false
	}
	if !s.lockUpdate(w) {
		return "", false
	}
	return sig, true
}

// wipeLen is how much of a refused root is overwritten: the squashfs
// superblock and the first blocks, so that the partition no longer mounts.
const wipeLen = 1 << 20

func (s *Server) putRoot(w http.ResponseWriter, r *http.Request) {
	sig, ok := s.startSignedPut(w, r)
	if !ok {
		return
	}
	defer s.update.Unlock()
	s.rootVerified = false
	hr := &hashingReader{r: r.Body, h: sha256.New()}
	rec := s.callGokrazy(r.Context(), http.MethodPut, "/update/root", hr, http.Header{"X-Gokrazy-Update-Hash": {"sha256"}})
	if rec.Code != http.StatusOK {
		s.wipeRoot(r.Context())
		http.Error(w, "writing the root partition: "+strings.TrimSpace(rec.Body.String()), rec.Code)
		return
	}
	digest := hr.digest()
	if got := strings.TrimSpace(rec.Body.String()); got != hex.EncodeToString(digest[:]) {
		s.wipeRoot(r.Context())
		http.Error(w, "the partition holds other bytes than were received", http.StatusInternalServerError)
		return
	}
	if err := Verify(s.PublicKey, PartRoot, hr.n, digest, sig); err != nil {
		s.wipeRoot(r.Context())
		s.log().Warn("update API: refused a root image", "client", r.RemoteAddr, "bytes", hr.n, "err", err)
		http.Error(w, err.Error()+"; the inactive root partition was wiped", http.StatusForbidden)
		return
	}
	s.rootVerified = true
	s.log().Info("update API: signed root image written", "client", r.RemoteAddr, "bytes", hr.n)
	io.WriteString(w, hex.EncodeToString(digest[:]))
}

// wipeRoot overwrites the start of the inactive root partition with zeros
// through gokrazy's own handler (which knows which partition that is).
func (s *Server) wipeRoot(ctx context.Context) {
	rec := s.callGokrazy(context.WithoutCancel(ctx), http.MethodPut, "/update/root", bytes.NewReader(make([]byte, wipeLen)), nil)
	if rec.Code != http.StatusOK {
		s.log().Error("update API: wiping a refused root image failed; it stays unbootable only while no switch is accepted", "status", rec.Code, "answer", rec.Body.String())
	}
}

func (s *Server) putBoot(w http.ResponseWriter, r *http.Request) {
	sig, ok := s.startSignedPut(w, r)
	if !ok {
		return
	}
	defer s.update.Unlock()
	max := s.MaxBoot
	if max <= 0 {
		max = 256 << 20
	}
	spool, size, digest, err := s.spool(http.MaxBytesReader(w, r.Body, max))
	if spool != nil {
		defer os.Remove(spool.Name())
		defer spool.Close()
	}
	if err != nil {
		code := http.StatusInternalServerError
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			code = http.StatusRequestEntityTooLarge
		}
		http.Error(w, "receiving the boot image: "+err.Error(), code)
		return
	}
	if err := Verify(s.PublicKey, PartBoot, size, digest, sig); err != nil {
		s.log().Warn("update API: refused a boot image", "client", r.RemoteAddr, "bytes", size, "err", err)
		http.Error(w, err.Error()+"; the boot partition was not touched", http.StatusForbidden)
		return
	}
	rec := s.callGokrazy(r.Context(), http.MethodPut, "/update/boot", spool, http.Header{"X-Gokrazy-Update-Hash": {"sha256"}})
	if rec.Code != http.StatusOK {
		http.Error(w, "writing the boot partition: "+strings.TrimSpace(rec.Body.String()), rec.Code)
		return
	}
	if got := strings.TrimSpace(rec.Body.String()); got != hex.EncodeToString(digest[:]) {
		http.Error(w, "the boot partition holds other bytes than were checked", http.StatusInternalServerError)
		return
	}
	s.log().Info("update API: signed boot image written", "client", r.RemoteAddr, "bytes", size)
	io.WriteString(w, hex.EncodeToString(digest[:]))
}

// spool writes body to a new file in SpoolDir and returns it rewound,
// with its length and SHA-256.
func (s *Server) spool(body io.Reader) (*os.File, int64, [sha256.Size]byte, error) {
	if err := os.MkdirAll(s.SpoolDir, 0o700); err != nil {
		return nil, 0, [sha256.Size]byte{}, err
	}
	f, err := os.CreateTemp(s.SpoolDir, "boot-*.img")
	if err != nil {
		return nil, 0, [sha256.Size]byte{}, err
	}
	hr := &hashingReader{r: body, h: sha256.New()}
	if _, err := io.Copy(f, hr); err != nil {
		return f, 0, [sha256.Size]byte{}, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return f, 0, [sha256.Size]byte{}, err
	}
	return f, hr.n, hr.digest(), nil
}

func (s *Server) switchRoot(w http.ResponseWriter, r *http.Request) {
	if !s.lockUpdate(w) {
		return
	}
	defer s.update.Unlock()
	if !s.rootVerified {
		http.Error(w, "no signed root image was written since this boot: nothing to switch to", http.StatusConflict)
		return
	}
	rec := s.callGokrazy(r.Context(), http.MethodPost, r.URL.Path, nil, nil)
	if rec.Code != http.StatusOK {
		http.Error(w, strings.TrimSpace(rec.Body.String()), rec.Code)
		return
	}
	s.log().Info("update API: the next boot uses the new root", "client", r.RemoteAddr, "how", filepath.Base(r.URL.Path))
}

// Limits of the update listener: uploads are hundreds of MB over a home
// network, so the body may take long, but the header may not, and only a
// few connections are held at once.
const (
	maxUpdateConns    = 8
	updateBodyTimeout = 30 * time.Minute
)

// Serve serves the update API with TLS on ln until ctx is done. allow
// decides from a connection's local address whether it is served at all
// (the init allows the LAN's private addresses, as gokrazy did).
func (s *Server) Serve(ctx context.Context, ln net.Listener, getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error), allow func(net.Addr) bool) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       updateBodyTimeout,
		WriteTimeout:      updateBodyTimeout + time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: getCert},
		ErrorLog:          slog.NewLogLogger(s.log().Handler(), slog.LevelDebug),
	}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	err := srv.ServeTLS(netutil.LimitListener(&filterListener{Listener: ln, allow: allow, log: s.log()}, maxUpdateConns), "", "")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// filterListener closes connections that arrive on an address the update
// API must not answer on.
type filterListener struct {
	net.Listener
	allow func(net.Addr) bool
	log   *slog.Logger
}

func (l *filterListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || l.allow == nil || l.allow(c.LocalAddr()) {
			return c, err
		}
		l.log.Debug("update API: connection to a public or uplink address closed", "local", c.LocalAddr(), "remote", c.RemoteAddr())
		c.Close()
	}
}
