package main

// Attackers for the NAT64's bounds, run inside the lab's namespaces with
// `ip netns exec` (lab/integration/hostile_nat64_test.go):
//
//	lab spray-udp -src 198.51.100.80 -dst 192.0.2.100:1234 -from 20000 -count 8000
//	lab rotate-icmp6 -prefix 2001:db8:1000:100::/64 -addrs 5 -remotes 8000
//
// spray-udp is a remote the host talks to, sending from thousands of source
// ports to the host's binding: address-dependent filtering lets each in,
// and each would open a session. rotate-icmp6 is a LAN host rotating its
// addresses inside its /64 (RFC 8981 privacy addresses), each address
// sending echo requests to thousands of IPv4 destinations through the
// NAT64: one session per destination. Both only send; they print what they
// sent.

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/ethframe"
	"codeberg.org/monostack/gizmo/internal/sockopt"
	"codeberg.org/monostack/gizmo/lab/netlab"
)

func cmdSprayUDP(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("spray-udp", flag.ContinueOnError)
	src := fs.String("src", netlab.V4OnlyServer.String(), "source address (local to this namespace)")
	dst := fs.String("dst", "", "the binding: pool address and port")
	from := fs.Int("from", 20000, "first source port")
	count := fs.Int("count", 8000, "number of source ports")
	if err := fs.Parse(args); err != nil {
		return err
	}
	to, err := netip.ParseAddrPort(*dst)
	if err != nil || !to.Addr().Is4() {
		return fmt.Errorf("spray-udp: -dst %q: want IPv4 address:port", *dst)
	}
	from4, err := netip.ParseAddr(*src)
	if err != nil || !from4.Is4() {
		return fmt.Errorf("spray-udp: -src %q: want an IPv4 address", *src)
	}
	if *from < 1 || *count < 1 || *from+*count > 65536 {
		return fmt.Errorf("spray-udp: ports %d+%d out of range", *from, *count)
	}
	// A raw socket sends from any source port without binding one socket
	// per port; the kernel writes the IPv4 header.
	c, err := net.ListenPacket("ip4:udp", from4.String())
	if err != nil {
		return fmt.Errorf("spray-udp: %w", err)
	}
	defer c.Close()
	payload := []byte("spray")
	sent := 0
	for i := range *count {
		if ctx.Err() != nil {
			break
		}
		u := udp4(from4, to.Addr(), uint16(*from+i), to.Port(), payload)
		if err := writeRetry(ctx, func() error {
			_, err := c.WriteTo(u, &net.IPAddr{IP: to.Addr().AsSlice()})
			return err
		}); err != nil {
			return fmt.Errorf("spray-udp: after %d: %w", sent, err)
		}
		sent++
		pace(sent)
	}
	fmt.Printf("sent %d datagrams from %s ports %d-%d to %s\n", sent, from4, *from, *from+sent-1, to)
	return nil
}

// udp4 builds a UDP header and payload with its checksum (RFC 768).
func udp4(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	b := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(len(b)))
	copy(b[8:], payload)
	s, d := src.As4(), dst.As4()
	pseudo := append(append(append([]byte{}, s[:]...), d[:]...), 0, syscall.IPPROTO_UDP, b[4], b[5])
	c := ethframe.Checksum(append(pseudo, b...))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(b[6:], c)
	return b
}

func cmdRotateICMP6(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("rotate-icmp6", flag.ContinueOnError)
	prefix := fs.String("prefix", "", "the host's /64")
	addrs := fs.Int("addrs", 5, "addresses to rotate through")
	remotes := fs.Int("remotes", 8000, "IPv4 destinations per address")
	base := fs.String("remote-base", "198.18.0.0", "first IPv4 destination (RFC 2544's benchmarking range)")
	pref64 := fs.String("pref64", netlab.Pref64.String(), "the NAT64 prefix (a /96)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p, err := netip.ParsePrefix(*prefix)
	if err != nil || p.Bits() != 64 || !p.Addr().Is6() {
		return fmt.Errorf("rotate-icmp6: -prefix %q: want an IPv6 /64", *prefix)
	}
	n64, err := netip.ParsePrefix(*pref64)
	if err != nil || n64.Bits() != 96 {
		return fmt.Errorf("rotate-icmp6: -pref64 %q: want a /96", *pref64)
	}
	first, err := netip.ParseAddr(*base)
	if err != nil || !first.Is4() {
		return fmt.Errorf("rotate-icmp6: -remote-base %q: want an IPv4 address", *base)
	}
	sent := 0
	for a := range *addrs {
		src := p.Addr().As16()
		binary.BigEndian.PutUint64(src[8:], rand.Uint64())
		n, err := echoFrom(ctx, netip.AddrFrom16(src), n64, first, *remotes, uint16(a+1))
		sent += n
		if err != nil {
			return fmt.Errorf("rotate-icmp6: after %d: %w", sent, err)
		}
	}
	fmt.Printf("sent %d echo requests from %d addresses of %s\n", sent, *addrs, p)
	return nil
}

// echoFrom sends one echo request from src to each of n IPv4 destinations
// (from first on, embedded in pref64). src need not be configured here:
// IPV6_FREEBIND lets the raw socket use any address, as a host with
// privacy addresses has many.
func echoFrom(ctx context.Context, src netip.Addr, pref64 netip.Prefix, first netip.Addr, n int, id uint16) (int, error) {
	lc := net.ListenConfig{Control: sockopt.Control(sockopt.Freebind)}
	c, err := lc.ListenPacket(ctx, "ip6:ipv6-icmp", src.String())
	if err != nil {
		return 0, err
	}
	defer c.Close()
	// Echo request, identifier id; the kernel fills in the ICMPv6
	// checksum of a raw ICMPv6 socket (RFC 3542 §3.1).
	msg := []byte{128, 0, 0, 0, byte(id >> 8), byte(id), 0, 1}
	dst := pref64.Addr().As16()
	v4 := binary.BigEndian.Uint32(first.AsSlice())
	for i := range n {
		if ctx.Err() != nil {
			return i, ctx.Err()
		}
		binary.BigEndian.PutUint32(dst[12:], v4+uint32(i))
		err := writeRetry(ctx, func() error {
			_, err := c.WriteTo(msg, &net.IPAddr{IP: dst[:]})
			return err
		})
		if err != nil {
			return i, err
		}
		pace(i + 1)
	}
	return n, nil
}

// pace pauses briefly every hundred packets, so that the veths' backlog
// (netdev_max_backlog) does not drop what the attack is meant to deliver.
func pace(sent int) {
	if sent%100 == 0 {
		time.Sleep(time.Millisecond)
	}
}

// writeRetry retries a send while the socket buffer is full.
func writeRetry(ctx context.Context, send func() error) error {
	for range 1000 {
		err := send()
		if !errors.Is(err, unix.ENOBUFS) && !errors.Is(err, unix.EAGAIN) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return errors.New("socket buffer stays full")
}
