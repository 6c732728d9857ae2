// Package tlscert keeps the gizmo's self-signed TLS identity: an ECDSA P-256
// key made on first boot and a certificate for the gizmo's names and LAN
// addresses, both in the state directory. The dashboard (HTTPS on :443) and
// the update API in the appliance's init use the same files, so the owner
// compares one fingerprint.
//
// The key never changes once made; the certificate is re-issued with the same
// key when the addresses it must name change. That is why the fingerprint to
// pin is the public key's (PublicKeySHA256), not the certificate's.
package tlscert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The files in the state directory.
const (
	KeyFile  = "tls-key.pem"  // PKCS #8 private key, mode 0600
	CertFile = "tls-cert.pem" // the certificate
)

// The validity spans the clock a gizmo can have: a Pi has no real-time
// clock and boots in 1970 until NTP answers, so NotBefore lies before any
// boot, and NotAfter is RFC 5280 §4.1.2.5's "no well-defined expiration
// date" (99991231235959Z).
var (
	notBefore = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	notAfter  = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
)

// Names are what a certificate must name: DNS names and IP addresses
// (subject alternative names, RFC 5280 §4.2.1.6).
type Names struct {
	DNS []string
	IPs []netip.Addr
}

// Identity is a key and the certificate that goes with it.
type Identity struct {
	Cert tls.Certificate // Leaf is set
}

// CertSHA256 is the certificate's SHA-256 fingerprint as browsers show it
// (upper-case hex pairs joined by colons).
func (id Identity) CertSHA256() string {
	if len(id.Cert.Certificate) == 0 {
		return ""
	}
	return Fingerprint(id.Cert.Certificate[0])
}

// PublicKeySHA256 is the SHA-256 of the certificate's SubjectPublicKeyInfo,
// the value that stays when the certificate is re-issued.
func (id Identity) PublicKeySHA256() string {
	if id.Cert.Leaf == nil {
		return ""
	}
	return PublicKeyFingerprint(id.Cert.Leaf)
}

// Fingerprint is SHA-256 of b in the browsers' notation.
func Fingerprint(b []byte) string {
	sum := sha256.Sum256(b)
	return colonHex(sum[:])
}

// PublicKeyFingerprint is SHA-256 of c's SubjectPublicKeyInfo.
func PublicKeyFingerprint(c *x509.Certificate) string {
	return Fingerprint(c.RawSubjectPublicKeyInfo)
}

func colonHex(b []byte) string {
	h := strings.ToUpper(hex.EncodeToString(b))
	var out strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			out.WriteByte(':')
		}
		out.WriteString(h[i : i+2])
	}
	return out.String()
}

// NormalizeFingerprint turns a fingerprint typed by a person (with or
// without colons, any case) into the notation of Fingerprint, or fails.
func NormalizeFingerprint(s string) (string, error) {
	h := strings.NewReplacer(":", "", " ", "", "-", "").Replace(strings.TrimSpace(s))
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("tlscert: %q is not a SHA-256 fingerprint (64 hex digits)", s)
	}
	return colonHex(b), nil
}

// Load reads a certificate and key that the owner provides; it never
// writes.
func Load(certFile, keyFile string) (Identity, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return Identity{}, fmt.Errorf("tlscert: %w", err)
	}
	return Identity{Cert: c}, nil
}

// Ensure returns the identity kept in dir. It makes the key when there is
// none and issues a certificate when there is none, when the one there was
// made for another key, or when it lacks a name or address of want. A new
// certificate names the DNS names it had and those of want, and want's
// addresses, or the old ones when want has none: a caller that does not
// know the addresses (the init) never drops those of one that does (the
// dashboard). issued tells the caller to log the new fingerprint.
//
// Two processes may call Ensure at once on the first boot: the key is
// created with link(2), which fails if the other one won, and a certificate
// replaces the old one with rename(2), so both end up with the same key and
// a valid certificate for it.
func Ensure(dir string, want Names) (id Identity, issued bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Identity{}, false, fmt.Errorf("tlscert: %w", err)
	}
	key, err := loadOrCreateKey(filepath.Join(dir, KeyFile))
	if err != nil {
		return Identity{}, false, err
	}
	certPath := filepath.Join(dir, CertFile)
	old, err := readCert(certPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Identity{}, false, err
	}
	if old != nil && samePublicKey(old, key) && covers(old, want) {
		return identity(old, key), false, nil
	}
	names := want
	if old != nil {
		names.DNS = union(old.DNSNames, want.DNS)
		if len(want.IPs) == 0 {
			for _, ip := range old.IPAddresses {
				if a, ok := netip.AddrFromSlice(ip); ok {
					names.IPs = append(names.IPs, a.Unmap())
				}
			}
		}
	}
	c, err := issue(key, names)
	if err != nil {
		return Identity{}, false, err
	}
	if err := writeAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o644, false); err != nil {
		return Identity{}, false, err
	}
	return identity(c, key), true, nil
}

func identity(c *x509.Certificate, key *ecdsa.PrivateKey) Identity {
	return Identity{Cert: tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: key, Leaf: c}}
}

func samePublicKey(c *x509.Certificate, key *ecdsa.PrivateKey) bool {
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	return ok && pub.Equal(&key.PublicKey)
}

// covers reports whether c names everything in want.
func covers(c *x509.Certificate, want Names) bool {
	for _, n := range want.DNS {
		if !slices.ContainsFunc(c.DNSNames, func(d string) bool { return strings.EqualFold(d, n) }) {
			return false
		}
	}
	for _, a := range want.IPs {
		if !slices.ContainsFunc(c.IPAddresses, func(ip net.IP) bool { return ip.Equal(net.IP(a.AsSlice())) }) {
			return false
		}
	}
	return true
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, s) }) {
			out = append(out, s)
		}
	}
	return out
}

// issue makes a self-signed server certificate for names.
func issue(key *ecdsa.PrivateKey, names Names) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("tlscert: serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "gizmo"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     names.DNS,
	}
	if len(names.DNS) > 0 {
		tmpl.Subject.CommonName = names.DNS[0]
	}
	for _, a := range names.IPs {
		// A zone cannot be named: link-local addresses go in without it.
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(a.WithZone("").AsSlice()))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("tlscert: issue: %w", err)
	}
	return x509.ParseCertificate(der)
}

func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		// A torn or foreign file: issue a new one over it.
		return nil, fs.ErrNotExist
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fs.ErrNotExist
	}
	return c, nil
}

func loadOrCreateKey(path string) (*ecdsa.PrivateKey, error) {
	for range 2 {
		b, err := os.ReadFile(path)
		if err == nil {
			return parseKey(path, b)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("tlscert: %w", err)
		}
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("tlscert: generate key: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("tlscert: %w", err)
		}
		err = writeAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600, true)
		if err == nil {
			return key, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		// Another process made the key first: read that one.
	}
	return nil, fmt.Errorf("tlscert: %s appears and vanishes", path)
}

func parseKey(path string, b []byte) (*ecdsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("tlscert: %s holds no PEM block (move it aside to make a new key)", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("tlscert: %s: %w", path, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("tlscert: %s: a %T, not an ECDSA key", path, k)
	}
	return ek, nil
}

// writeAtomic writes data to a temporary file, fsyncs it and moves it to
// path: with link(2) when exclusive (fails with fs.ErrExist if path is
// there), else with rename(2).
func writeAtomic(path string, data []byte, mode os.FileMode, exclusive bool) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("tlscert: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(data)
	if werr == nil {
		werr = tmp.Chmod(mode)
	}
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("tlscert: write %s: %w", path, werr)
	}
	if exclusive {
		err = os.Link(tmp.Name(), path)
	} else {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("tlscert: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
