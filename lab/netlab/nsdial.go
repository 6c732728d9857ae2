package netlab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"time"

	"github.com/vishvananda/netns"
)

// InNamespace runs fn on an OS thread inside network namespace ns, for
// sockets that a helper library creates itself (ndp.Listen, netlink
// dialers). See inNamespace.
func InNamespace(ns string, fn func() error) error { return inNamespace(ns, fn) }

// inNamespace runs fn on a fresh OS thread that has entered network
// namespace ns. The thread is never returned to the Go scheduler (the
// goroutine exits while still locked, so the runtime discards the thread),
// which keeps other goroutines out of the lab's namespaces. Sockets created
// by fn stay in ns for their whole life.
func inNamespace(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		h, err := netns.GetFromName(ns)
		if err != nil {
			errc <- fmt.Errorf("netlab: namespace %s: %w", ns, err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- fmt.Errorf("netlab: enter namespace %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// DialContext connects to addr from inside namespace ns. addr must hold a
// literal IP address (the lab has no name resolution on the host side).
func DialContext(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := inNamespace(ns, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netlab: dial %s %s in %s: %w", network, addr, ns, err)
	}
	return c, nil
}

// Listen opens a listener inside namespace ns.
func Listen(ns, network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := inNamespace(ns, func() error {
		var err error
		ln, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netlab: listen %s %s in %s: %w", network, addr, ns, err)
	}
	return ln, nil
}

// ListenPacket opens a packet socket inside namespace ns.
func ListenPacket(ns, network, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := inNamespace(ns, func() error {
		var err error
		pc, err = net.ListenPacket(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netlab: listen %s %s in %s: %w", network, addr, ns, err)
	}
	return pc, nil
}

// HTTPClient returns an HTTP client whose connections start in namespace
// ns. URLs must use literal IP addresses.
func HTTPClient(ns string) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return DialContext(ctx, ns, network, addr)
			},
			DisableKeepAlives: true,
		},
	}
}

// HTTPGet fetches url from inside namespace ns and returns the body; a
// status other than 200 is an error.
func HTTPGet(ctx context.Context, ns, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("netlab: GET %s: %w", url, err)
	}
	resp, err := HTTPClient(ns).Do(req)
	if err != nil {
		return "", fmt.Errorf("netlab: GET %s from %s: %w", url, ns, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("netlab: GET %s from %s: %w", url, ns, err)
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("netlab: GET %s from %s: %s", url, ns, resp.Status)
	}
	return string(b), nil
}
