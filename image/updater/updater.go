// Package updater is both ends of the gizmo's signed network update. The
// protocol is gokrazy's (github.com/gokrazy/gokrazy, update.go): PUT
// /update/root writes the inactive root partition, PUT /update/boot the boot
// partition, POST /update/switch makes the next boot use the freshly
// written root, and POST /reboot restarts; every request carries the
// appliance password (HTTP basic auth, user "gokrazy"). On top of it, every
// image carries an Ed25519 signature (SignatureHeader) by the key the
// gizmo's image was built with, and it all goes over HTTPS to a server
// whose key the client pins. Server is the appliance's side, run by the
// generated init in front of gokrazy's handlers; Client is `go run ./image
// update`.
package updater

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"codeberg.org/monostack/gizmo/web/tlscert"
)

// Client talks to one appliance.
type Client struct {
	BaseURL  string // e.g. "https://gizmo.home.arpa:8080"
	Password string
	// SigningKey signs the images: the key the gizmo's image was built
	// with (its public half is in the image).
	SigningKey ed25519.PrivateKey
	// KeySHA256 pins the gizmo's TLS public key (the fingerprint its
	// serial console and dashboard show); the certificate is self-signed,
	// so the pin is the only check.
	KeySHA256 string
	// DialContext makes the connections (nil: the default dialer).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	Logger      *slog.Logger

	once sync.Once
	hc   *http.Client
}

// ErrKeyMismatch is wrapped when the gizmo presents another TLS key than
// the pinned one.
var ErrKeyMismatch = errors.New("the gizmo's TLS key is not the pinned one")

// tlsConfig trusts exactly the pinned key, or, with pin "", any key and
// reports it through seen (trust on first use).
func tlsConfig(pin string, seen func(string)) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // VerifyConnection checks the pin instead
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("update: no certificate")
			}
			got := tlscert.PublicKeyFingerprint(cs.PeerCertificates[0])
			if seen != nil {
				seen(got)
			}
			if pin != "" && got != pin {
				return fmt.Errorf("update: %w: it presents %s, pinned %s", ErrKeyMismatch, got, pin)
			}
			return nil
		},
	}
}

func (c *Client) transport(pin string, seen func(string)) *http.Transport {
	return &http.Transport{DialContext: c.DialContext, TLSClientConfig: tlsConfig(pin, seen), TLSHandshakeTimeout: 30 * time.Second}
}

// KeySHA256Of connects to the gizmo and returns the fingerprint of the TLS
// key it presents, without trusting it: for a first contact, which the
// caller confirms with the owner and saves.
func (c *Client) KeySHA256Of(ctx context.Context) (string, error) {
	var fp string
	hc := &http.Client{Transport: c.transport("", func(s string) { fp = s })}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, strings.TrimSuffix(c.BaseURL, "/")+"/update/features", nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if fp == "" {
		return "", fmt.Errorf("update: reaching %s: %w", c.BaseURL, err)
	}
	if err == nil {
		resp.Body.Close()
	}
	return fp, nil
}

// Files are the partition images to send.
type Files struct {
	Root string // squashfs for the inactive root partition
	Boot string // FAT image for the boot partition ("" leaves it alone)
}

// http is the client for the update: no overall timeout (uploads are
// large), the pinned key.
func (c *Client) http() *http.Client {
	c.once.Do(func() { c.hc = &http.Client{Transport: c.transport(c.KeySHA256, nil)} })
	return c.hc
}

func (c *Client) log() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func (c *Client) request(ctx context.Context, method, path string, body io.Reader, size int64) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, body)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth("gokrazy", c.Password)
	if size >= 0 {
		req.ContentLength = size
	}
	return req, nil
}

// do sends a request and returns the response body of a 2xx answer.
func (c *Client) do(req *http.Request) ([]byte, error) {
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, fmt.Errorf("update: %s %s: %w", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("update: %s %s: reading answer: %w", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return nil, fmt.Errorf("update: %s %s: the gizmo rejected the password (401)", req.Method, req.URL.Path)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("update: %s %s: %s: %s", req.Method, req.URL.Path, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// Features returns the update features the appliance supports, e.g.
// "partuuid,updatehash,gpt,".
func (c *Client) Features(ctx context.Context) (string, error) {
	req, err := c.request(ctx, http.MethodGet, "/update/features", nil, -1)
	if err != nil {
		return "", err
	}
	b, err := c.do(req)
	return strings.TrimSpace(string(b)), err
}

// put streams a signed file to an update endpoint and compares the SHA-256
// that the appliance computed over what it wrote with our own.
func (c *Client) put(ctx context.Context, part Part, file string) error {
	path := "/update/" + string(part)
	sig, err := SignFile(c.SigningKey, part, file)
	if err != nil {
		return err
	}
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	h := sha256.New()
	req, err := c.request(ctx, http.MethodPut, path, io.TeeReader(f, h), fi.Size())
	if err != nil {
		return err
	}
	req.Header.Set("X-Gokrazy-Update-Hash", "sha256")
	req.Header.Set(SignatureHeader, sig)
	start := time.Now()
	body, err := c.do(req)
	if err != nil {
		return err
	}
	want := hex.EncodeToString(h.Sum(nil))
	if got := strings.TrimSpace(string(body)); got != want {
		return fmt.Errorf("update: %s: the gizmo wrote data with SHA-256 %q, we sent %s", path, got, want)
	}
	c.log().Info("update: written", "endpoint", path, "bytes", fi.Size(), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (c *Client) post(ctx context.Context, path string, form url.Values) error {
	req, err := c.request(ctx, http.MethodPost, path, strings.NewReader(form.Encode()), -1)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	_, err = c.do(req)
	return err
}

// Update writes the root to the inactive partition, then the boot
// partition, switches the next boot to the new root and, if reboot is set,
// reboots. The order matters: the boot partition's cmdline.txt names root A,
// and /update/switch rewrites it to whichever partition was just written.
func (c *Client) Update(ctx context.Context, files Files, reboot bool) error {
	if c.KeySHA256 == "" {
		return errors.New("update: no TLS key pinned for the gizmo")
	}
	if len(c.SigningKey) != ed25519.PrivateKeySize {
		return errors.New("update: no signing key")
	}
	features, err := c.Features(ctx)
	if err != nil {
		return err
	}
	// gokrazy reports "gpt" when it booted from root=PARTUUID=.../PARTNROFF,
	// the form gizmo images use; "updatehash" means it answers with the
	// hash of what it wrote; FeatureSigned that the gizmo checks signatures
	// (an image from before does not, and speaks no HTTPS either).
	for _, f := range []string{"updatehash", "gpt", FeatureSigned} {
		if !strings.Contains(","+features+",", ","+f+",") {
			return fmt.Errorf("update: the gizmo does not support the %q update feature (features %q)", f, features)
		}
	}
	if err := c.put(ctx, PartRoot, files.Root); err != nil {
		return err
	}
	if files.Boot != "" {
		if err := c.put(ctx, PartBoot, files.Boot); err != nil {
			return err
		}
	}
	if err := c.post(ctx, "/update/switch", nil); err != nil {
		return err
	}
	c.log().Info("update: switched to the new root partition")
	if !reboot {
		return nil
	}
	// kexec=off: a full reboot runs the firmware, so that a new boot
	// partition (kernel, device tree) takes effect.
	if err := c.post(ctx, "/reboot", url.Values{"kexec": {"off"}}); err != nil {
		return err
	}
	c.log().Info("update: rebooting")
	return nil
}
