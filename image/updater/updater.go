// Package updater updates a running gokrazy appliance over HTTP, through the
// endpoints that gokrazy's init serves (github.com/gokrazy/gokrazy,
// update.go): PUT /update/root writes the inactive root partition, PUT
// /update/boot the boot partition, POST /update/switch makes the next boot
// use the freshly written root, and POST /reboot restarts. Every request
// carries HTTP basic auth as user "gokrazy" with the password from
// /etc/gokr-pw.txt.
package updater

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Client talks to one appliance.
type Client struct {
	BaseURL  string // e.g. "http://gizmo.home.arpa:8080"
	Password string
	HTTP     *http.Client // nil: a client without overall timeout (uploads are large)
	Logger   *slog.Logger
}

// Files are the partition images to send.
type Files struct {
	Root string // squashfs for the inactive root partition
	Boot string // FAT image for the boot partition ("" leaves it alone)
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
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

// put streams a file to an update endpoint and compares the SHA-256 that
// the appliance computed over what it wrote with our own.
func (c *Client) put(ctx context.Context, path, file string) error {
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
	features, err := c.Features(ctx)
	if err != nil {
		return err
	}
	// gokrazy reports "gpt" when it booted from root=PARTUUID=.../PARTNROFF,
	// the form gizmo images use; "updatehash" means it answers with the
	// hash of what it wrote.
	for _, f := range []string{"updatehash", "gpt"} {
		if !strings.Contains(","+features+",", ","+f+",") {
			return fmt.Errorf("update: the gizmo does not support the %q update feature (features %q)", f, features)
		}
	}
	if err := c.put(ctx, "/update/root", files.Root); err != nil {
		return err
	}
	if files.Boot != "" {
		if err := c.put(ctx, "/update/boot", files.Boot); err != nil {
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
