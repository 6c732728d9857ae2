package netlab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/mdlayher/ndp"
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
	return openIn(ns, "dial "+network+" "+addr, func() (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	})
}

// Listen opens a listener inside namespace ns.
func Listen(ns, network, addr string) (net.Listener, error) {
	return openIn(ns, "listen "+network+" "+addr, func() (net.Listener, error) {
		return net.Listen(network, addr)
	})
}

// ListenPacket opens a packet socket inside namespace ns.
func ListenPacket(ns, network, addr string) (net.PacketConn, error) {
	return openIn(ns, "listen "+network+" "+addr, func() (net.PacketConn, error) {
		return net.ListenPacket(network, addr)
	})
}

// openIn runs open on a thread inside namespace ns and returns the socket
// it opened, which stays in ns; what names it in the error.
func openIn[T any](ns, what string, open func() (T, error)) (T, error) {
	var sock T
	err := inNamespace(ns, func() error {
		var err error
		sock, err = open()
		return err
	})
	if err != nil {
		var zero T
		return zero, fmt.Errorf("netlab: %s in %s: %w", what, ns, err)
	}
	return sock, nil
}

// WithNDP runs fn on a thread inside namespace ns with an NDP socket on
// ifname's link-local address, closed when fn returns. fn reads and writes
// on that thread: Go maps zones ("eth0") to interface indexes, and back,
// in the calling thread's namespace.
func WithNDP(ns, ifname string, fn func(c *ndp.Conn, ifi *net.Interface, ll netip.Addr) error) error {
	return inNamespace(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		c, ll, err := ndp.Listen(ifi, ndp.LinkLocal)
		if err != nil {
			return err
		}
		defer c.Close()
		return fn(c, ifi, ll)
	})
}

// WaitDHCPv4Offer sends DHCPDISCOVERs from ifname inside namespace ns,
// asking for the options opts, until a server offers or ctx ends, and
// returns the offer.
func WaitDHCPv4Offer(ctx context.Context, ns, ifname string, opts ...dhcpv4.OptionCode) (*dhcpv4.DHCPv4, error) {
	var offer *dhcpv4.DHCPv4
	var last error
	err := WaitFor(ctx, "a DHCPv4 offer on "+ifname+" in "+ns, func(ctx context.Context) (bool, error) {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		last = inNamespace(ns, func() error {
			c, err := nclient4.New(ifname, nclient4.WithTimeout(time.Second), nclient4.WithRetry(1))
			if err != nil {
				return err
			}
			defer c.Close()
			offer, err = c.DiscoverOffer(rctx, dhcpv4.WithRequestedOptions(opts...))
			return err
		})
		return last == nil, nil
	})
	if err != nil {
		return nil, fmt.Errorf("netlab: %w (last error %v)", err, last)
	}
	return offer, nil
}

// HTTPClient returns an HTTP client whose connections start in namespace
// ns. URLs must use literal IP addresses. Its Transport is an
// *http.Transport of its own, for callers that add a TLS configuration.
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
