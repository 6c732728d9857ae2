// Command dnsflood is the flooding host of run.sh's fairness run: it sends
// DNS queries from one address as fast as it can, without waiting for the
// answers (a misbehaving device does not), from several UDP sockets, so
// that its queries reach every SO_REUSEPORT socket of the server, and
// counts the answers.
//
//	dnsflood -server 127.0.0.1:5302 -from 127.0.0.2 -d queries.txt -l 10
//
// The query file is dnsperf's format, one "name TYPE" per line. It prints
// one line: sent=N answered=M seconds=S.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

func main() {
	var server netip.AddrPort
	var from netip.Addr
	flag.TextVar(&server, "server", netip.MustParseAddrPort("127.0.0.1:5302"), "the server to flood")
	flag.TextVar(&from, "from", netip.MustParseAddr("127.0.0.2"), "local address to send from")
	sockets := flag.Int("sockets", 4, "UDP sockets (source ports) to send from")
	file := flag.String("d", "", "query file: one \"name TYPE\" per line")
	seconds := flag.Float64("l", 10, "seconds to flood")
	flag.Parse()
	if err := run(server, from, *file, *sockets, time.Duration(*seconds*float64(time.Second))); err != nil {
		fmt.Fprintln(os.Stderr, "dnsflood:", err)
		os.Exit(1)
	}
}

func run(to netip.AddrPort, local netip.Addr, file string, sockets int, d time.Duration) error {
	queries, err := readQueries(file)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var sent, answered atomic.Uint64
	var wg sync.WaitGroup
	errs := make(chan error, 2*sockets)
	for range sockets {
		c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, 0)), net.UDPAddrFromAddrPort(to))
		if err != nil {
			return err
		}
		_ = c.SetReadBuffer(4 << 20)
		go func() {
			<-ctx.Done()
			// Answers still on their way count: give them a moment.
			time.Sleep(500 * time.Millisecond)
			c.Close()
		}()
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs <- flood(ctx, c, queries, &sent)
		}()
		go func() {
			defer wg.Done()
			buf := make([]byte, 65535)
			for {
				if _, err := c.Read(buf); err != nil {
					if !errors.Is(err, net.ErrClosed) {
						errs <- err
					}
					return
				}
				answered.Add(1)
			}
		}()
	}
	start := time.Now()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	fmt.Printf("sent=%d answered=%d seconds=%.1f\n", sent.Load(), answered.Load(), min(time.Since(start), d).Seconds())
	return nil
}

// flood sends the queries round and round in batches of 64 (sendmmsg(2)
// on the connected socket), until ctx is done.
func flood(ctx context.Context, c *net.UDPConn, queries [][]byte, sent *atomic.Uint64) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	const batch = 64
	bufs := make([][]byte, batch)
	iovs := make([]unix.Iovec, batch)
	msgs := make([]unix.Mmsghdr, batch)
	for i := range msgs {
		bufs[i] = make([]byte, 512)
		iovs[i].Base = &bufs[i][0]
		msgs[i].Hdr.Iov = &iovs[i]
		msgs[i].Hdr.SetIovlen(1)
	}
	id, next := uint16(0), 0
	for ctx.Err() == nil {
		for i := range msgs {
			q := queries[next%len(queries)]
			next++
			n := copy(bufs[i], q)
			id++
			bufs[i][0], bufs[i][1] = byte(id>>8), byte(id)
			iovs[i].SetLen(n)
		}
		var n uintptr
		var errno syscall.Errno
		err := rc.Write(func(fd uintptr) bool {
			n, _, errno = unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&msgs[0])), batch, 0, 0, 0)
			return errno != unix.EAGAIN
		})
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		if errno == 0 {
			sent.Add(uint64(n))
		}
		// Otherwise, e.g. ECONNREFUSED from an ICMP error of an earlier
		// send (the server restarting): keep flooding.
	}
	return nil
}

func readQueries(file string) ([][]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("-d: %w", err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 2 {
			continue
		}
		qtype, ok := dns.StringToType[strings.ToUpper(fields[1])]
		if !ok {
			return nil, fmt.Errorf("%s: unknown type %q", file, fields[1])
		}
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(fields[0]), qtype)
		b, err := m.Pack()
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no queries", file)
	}
	return out, nil
}
