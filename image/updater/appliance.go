package updater

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"codeberg.org/monostack/gizmo/web/tlscert"
)

// Appliance is how the generated init runs the update API.
type Appliance struct {
	// PublicKey is the base64 Ed25519 key the image was built with.
	PublicKey string
	// PasswordFiles are tried in order; the first with a password wins.
	PasswordFiles []string
	// Port is the update API's TCP port (HTTPS).
	Port string
	// StateDir holds the TLS identity, the same as the dashboard's, so
	// that the owner pins one key; Names are the certificate's DNS names.
	StateDir string
	Names    []string
	// SpoolDir holds a boot image until it is verified.
	SpoolDir string
	// Gokrazy serves gokrazy's own handlers (http.DefaultServeMux).
	Gokrazy http.Handler
	// PrivateAddrs lists the addresses to answer on (gokrazy's
	// PrivateInterfaceAddrs: private addresses, never on uplink*).
	PrivateAddrs func() ([]string, error)
	Logger       *slog.Logger
}

// retryEvery paces the attempts at what the boot may not have ready yet
// (/perm, the listening port).
const retryEvery = 10 * time.Second

// Run serves until ctx is done. Without a password the update API stays
// off, as gokrazy's does.
func (a Appliance) Run(ctx context.Context) error {
	log := a.Logger
	if log == nil {
		log = slog.Default()
	}
	pub, err := DecodePublicKey(a.PublicKey)
	if err != nil {
		return err
	}
	pw, err := readPassword(a.PasswordFiles)
	if err != nil {
		return err
	}
	var store *tlscert.Store
	for {
		var issued bool
		store, issued, err = tlscert.Open(a.StateDir, tlscert.Names{DNS: a.Names})
		if err == nil {
			id, _ := store.Current()
			what := "certificate"
			if issued {
				what = "made a new certificate"
			}
			log.Info("update API TLS "+what, "public_key_sha256", id.PublicKeySHA256(), "cert_sha256", id.CertSHA256())
			break
		}
		log.Warn("update API: no TLS identity yet; retrying", "dir", a.StateDir, "err", err)
		if !sleep(ctx, retryEvery) {
			return nil
		}
	}
	srv := &Server{PublicKey: pub, Password: pw, Gokrazy: a.Gokrazy, SpoolDir: a.SpoolDir, Logger: log}
	addr := net.JoinHostPort("::", a.Port)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			log.Info("update API: serving signed updates over HTTPS", "addr", addr)
			err = srv.Serve(ctx, ln, store.GetCertificate, a.allow(log))
		}
		if err != nil {
			log.Warn("update API: listener failed; retrying", "addr", addr, "err", err)
		}
		if !sleep(ctx, retryEvery) {
			return nil
		}
	}
}

// allow answers only on the addresses PrivateAddrs lists.
func (a Appliance) allow(log *slog.Logger) func(net.Addr) bool {
	if a.PrivateAddrs == nil {
		return nil
	}
	return func(local net.Addr) bool {
		ta, ok := local.(*net.TCPAddr)
		if !ok {
			return false
		}
		ip, ok := netip.AddrFromSlice(ta.IP)
		if !ok {
			return false
		}
		ip = ip.Unmap().WithZone(ta.Zone)
		addrs, err := a.PrivateAddrs()
		if err != nil {
			log.Warn("update API: listing private addresses", "err", err)
			return false
		}
		return allowedLocal(ip, addrs)
	}
}

func allowedLocal(ip netip.Addr, private []string) bool {
	for _, s := range private {
		if p, err := netip.ParseAddr(s); err == nil && p.Unmap() == ip {
			return true
		}
	}
	return false
}

func readPassword(files []string) (string, error) {
	for _, f := range files {
		b, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("update: password: %w", err)
		}
		if pw := strings.TrimSpace(string(b)); pw != "" {
			return pw, nil
		}
	}
	return "", fmt.Errorf("update: no password in %s: the update API stays off", strings.Join(files, ", "))
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
