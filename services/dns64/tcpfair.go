package dns64

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// TCP connections get their share too. Each connection is served by a
// goroutine of its own, so a host with many connections, each sending
// queries back to back, would get the CPU in proportion to them and leave
// the UDP readers (a few goroutines) little. RFC 7766 §6.2.2 lets a server
// limit a client's concurrent connections; clients are to reuse them and
// pipeline.
const (
	maxTCPPerClient = 8
	maxTCPConns     = 128
)

// fairListener accepts at most maxTCPPerClient connections per client (as
// fairKey tells clients apart) and maxTCPConns in all; it closes the
// others at once and counts them.
type fairListener struct {
	net.Listener
	key     func(netip.Addr) hostKey
	refused *atomic.Uint64

	mu    sync.Mutex
	conns map[hostKey]int // only clients with connections open: bounded by maxTCPConns
	total int
}

func newFairListener(l net.Listener, key func(netip.Addr) hostKey, refused *atomic.Uint64) *fairListener {
	return &fairListener{Listener: l, key: key, refused: refused, conns: map[hostKey]int{}}
}

func (l *fairListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		k := l.key(addrPort(c.RemoteAddr()).Addr())
		l.mu.Lock()
		ok := l.total < maxTCPConns && l.conns[k] < maxTCPPerClient
		if ok {
			l.conns[k]++
			l.total++
		}
		l.mu.Unlock()
		if !ok {
			l.refused.Add(1)
			c.Close()
			continue
		}
		return &fairConn{Conn: c, release: func() { l.release(k) }}, nil
	}
}

func (l *fairListener) release(k hostKey) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.conns[k]--; l.conns[k] <= 0 {
		delete(l.conns, k)
	}
}

// fairConn gives its place back when it is closed, once.
type fairConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *fairConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}
