package updater

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// SignatureHeader carries an update's Ed25519 signature (base64).
const SignatureHeader = "X-Gizmo-Signature"

// Part is which partition an image is for. It is part of what is signed,
// so that a signed boot image cannot be sent as a root image or back.
type Part string

const (
	PartRoot Part = "root"
	PartBoot Part = "boot"
)

// ErrBadSignature is wrapped by Verify when a signature is missing, is not
// well-formed, or does not verify.
var ErrBadSignature = errors.New("bad update signature")

// signedMessage is what a signature covers: a domain separator, the part,
// the image's length and its SHA-256. Signing the digest rather than the
// image lets both ends stream images of hundreds of MB.
func signedMessage(part Part, size int64, digest [sha256.Size]byte) []byte {
	msg := []byte("gizmo update image v1\x00")
	msg = append(msg, part...)
	msg = append(msg, 0)
	msg = strconv.AppendInt(msg, size, 10)
	msg = append(msg, 0)
	return append(msg, digest[:]...)
}

// SignDigest signs an image of the given length and SHA-256.
func SignDigest(key ed25519.PrivateKey, part Part, size int64, digest [sha256.Size]byte) string {
	return base64.StdEncoding.EncodeToString(ed25519.Sign(key, signedMessage(part, size, digest)))
}

// SignFile signs the image in file.
func SignFile(key ed25519.PrivateKey, part Part, file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("update: sign: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", fmt.Errorf("update: sign %s: %w", file, err)
	}
	return SignDigest(key, part, n, [sha256.Size]byte(h.Sum(nil))), nil
}

// Verify checks sig over an image of the given length and SHA-256.
func Verify(pub ed25519.PublicKey, part Part, size int64, digest [sha256.Size]byte, sig string) error {
	if sig == "" {
		return fmt.Errorf("%w: the image is not signed (%s missing)", ErrBadSignature, SignatureHeader)
	}
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(raw) != ed25519.SignatureSize {
		return fmt.Errorf("%w: %s is not a base64 Ed25519 signature", ErrBadSignature, SignatureHeader)
	}
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, signedMessage(part, size, digest), raw) {
		return fmt.Errorf("%w: the %s image is not signed with the key this gizmo's image trusts", ErrBadSignature, part)
	}
	return nil
}

// EncodePublicKey and DecodePublicKey convert a public key to and from the
// base64 text the generated init embeds.
func EncodePublicKey(pub ed25519.PublicKey) string {
	return base64.StdEncoding.EncodeToString(pub)
}

func DecodePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("update: %q is not a base64 Ed25519 public key", s)
	}
	return ed25519.PublicKey(b), nil
}

// LoadKey reads the signing key in path (PKCS #8 PEM), which must exist.
func LoadKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("update: signing key: %w", err)
	}
	key, err := parseKey(b)
	if err != nil {
		return nil, fmt.Errorf("update: signing key %s: %w", path, err)
	}
	return key, nil
}

// LoadOrCreateKey reads the signing key in path (PKCS #8 PEM), or makes one
// and writes it with mode 0600. created tells the caller to say so: images
// built with a new key refuse updates signed with the old one, and back.
func LoadOrCreateKey(path string) (key ed25519.PrivateKey, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		key, err := parseKey(b)
		if err != nil {
			return nil, false, fmt.Errorf("update: signing key %s: %w", path, err)
		}
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("update: signing key: %w", err)
	}
	_, key, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("update: generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, false, fmt.Errorf("update: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("update: %w", err)
	}
	// O_EXCL: never overwrite a key, even one made a moment ago.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("update: signing key: %w", err)
	}
	_, werr := f.Write(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err := f.Close(); werr == nil {
		werr = err
	}
	if werr != nil {
		os.Remove(path)
		return nil, false, fmt.Errorf("update: signing key: %w", werr)
	}
	return key, true, nil
}

func parseKey(b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, not an Ed25519 key", k)
	}
	return ek, nil
}
