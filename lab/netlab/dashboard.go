package netlab

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"codeberg.org/monostack/gizmo/web/tlscert"
)

// GizmoPassword is the lab gizmo's appliance password, which it generated
// in its state dir.
func (l *Lab) GizmoPassword() (string, error) {
	b, err := os.ReadFile(filepath.Join(l.GizmoStateDir(), "password.txt"))
	if err != nil {
		return "", fmt.Errorf("netlab: appliance password: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// GizmoKeySHA256 is the public-key fingerprint of the TLS certificate in
// a gizmo's state dir: what a person compares with the serial console
// before trusting the dashboard.
func GizmoKeySHA256(stateDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, tlscert.CertFile))
	if err != nil {
		return "", fmt.Errorf("netlab: the gizmo's certificate: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return "", errors.New("netlab: the gizmo's certificate is not PEM")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return "", fmt.Errorf("netlab: the gizmo's certificate: %w", err)
	}
	return tlscert.PublicKeyFingerprint(c), nil
}

// DashboardClient is an HTTPS client for the gizmo's dashboard whose
// connections start in namespace ns. It trusts exactly the gizmo's key
// (the certificate is self-signed), as a script that pinned it does.
func (l *Lab) DashboardClient(ns string) (*http.Client, error) {
	pin, err := GizmoKeySHA256(l.GizmoStateDir())
	if err != nil {
		return nil, err
	}
	c := HTTPClient(ns)
	c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{
		InsecureSkipVerify: true, // VerifyConnection checks the pin
		VerifyConnection: func(cs tls.ConnectionState) error {
			if got := tlscert.PublicKeyFingerprint(cs.PeerCertificates[0]); got != pin {
				return fmt.Errorf("netlab: the dashboard's key is %s, the gizmo's state dir has %s", got, pin)
			}
			return nil
		},
	}
	return c, nil
}

// DashboardAPI sends a request to the gizmo's dashboard API as a script
// does: over HTTPS from inside gz-gizmo, with the appliance password (HTTP
// basic auth). An answer other than 200 is an error that carries the
// body.
func (l *Lab) DashboardAPI(ctx context.Context, method, path, body string) ([]byte, error) {
	pw, err := l.GizmoPassword()
	if err != nil {
		return nil, err
	}
	c, err := l.DashboardClient(NSGizmo)
	if err != nil {
		return nil, err
	}
	code, b, err := AsOwner(ctx, c, method, "https://[::1]"+path, pw, body)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return b, fmt.Errorf("netlab: %s %s: %d %s: %s", method, path, code, http.StatusText(code), strings.TrimSpace(string(b)))
	}
	return b, nil
}

// AsOwner sends a request over c as the gizmo's owner does, with the
// appliance password pw (HTTP basic auth), and returns the status code
// and the body (up to 1 MiB) of whatever the gizmo answered: a test of a
// refusal reads both.
func AsOwner(ctx context.Context, c *http.Client, method, url, pw, body string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("netlab: %s %s: %w", method, url, err)
	}
	req.SetBasicAuth("gizmo", pw)
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("netlab: %s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("netlab: %s %s: %w", method, url, err)
	}
	return resp.StatusCode, b, nil
}

// ForwardTCP passes every connection accepted on ln on to target, dialled
// inside namespace ns, bytes as they are (TLS included), until ctx is done
// or ln is closed. It returns when every connection has ended.
func ForwardTCP(ctx context.Context, ln net.Listener, ns, target string) {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		wg.Go(func() {
			defer c.Close()
			up, err := DialContext(ctx, ns, "tcp", target)
			if err != nil {
				return
			}
			defer up.Close()
			stop := context.AfterFunc(ctx, func() { c.Close(); up.Close() })
			defer stop()
			done := make(chan struct{})
			go func() {
				io.Copy(up, c)
				if tc, ok := up.(interface{ CloseWrite() error }); ok {
					tc.CloseWrite()
				}
				close(done)
			}()
			io.Copy(c, up)
			c.Close() // the gizmo is done: so is the client's side
			<-done
		})
	}
}
