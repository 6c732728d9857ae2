package upnp

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// inboundFlows tells whether traffic comes in through a pinhole.
type inboundFlows interface {
	// count is the number of flows the firewall tracks that were opened
	// towards client's port (their original direction's destination).
	count(client netip.Addr, proto uint8, port uint16) (int, error)
}

// endpoint is a flow's original destination.
type endpoint struct {
	addr  netip.Addr
	proto uint8
	port  uint16
}

// flowsMaxAge is how long one read of the conntrack table answers
// CheckPinholeWorking: reading the whole table costs time on a table of
// tens of thousands of flows, and the answer may be a second old.
const flowsMaxAge = time.Second

// conntrackFlows reads the kernel's conntrack table through a netlink
// handle opened in the service's network namespace, at most once per
// flowsMaxAge.
type conntrackFlows struct {
	h *netlink.Handle

	mu   sync.Mutex
	at   time.Time
	byTo map[endpoint]int
}

func openConntrack() (*conntrackFlows, error) {
	h, err := netlink.NewHandle(unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("upnp: conntrack netlink: %w", err)
	}
	return &conntrackFlows{h: h}, nil
}

func (c *conntrackFlows) close() { c.h.Close() }

func (c *conntrackFlows) count(client netip.Addr, proto uint8, port uint16) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); c.byTo == nil || now.Sub(c.at) >= flowsMaxAge {
		flows, err := c.h.ConntrackTableList(netlink.ConntrackTable, unix.AF_INET6)
		if err != nil {
			return 0, fmt.Errorf("upnp: conntrack table: %w", err)
		}
		c.byTo = make(map[endpoint]int)
		for _, f := range flows {
			a, ok := netip.AddrFromSlice(f.Forward.DstIP)
			if !ok {
				continue
			}
			c.byTo[endpoint{a, f.Forward.Protocol, f.Forward.DstPort}]++
		}
		c.at = now
	}
	return c.byTo[endpoint{client, proto, port}], nil
}
