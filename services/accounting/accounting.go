// Package accounting counts the bytes each LAN address exchanges with the
// internet through the kernel's forwarding path: native IPv6 and legacy
// IPv4 (NAT44). It keeps its own nftables table, gizmo_acct, apart from the
// firewall's ruleset, with one dynamic set per direction and family whose
// elements carry counters, so that the rule count does not grow with the
// number of hosts.
//
// NAT64 traffic is not counted here: the eBPF datapath redirects it at tc
// ingress before netfilter sees it, and counts it itself.
package accounting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/mailbox"
	"codeberg.org/monostack/gizmo/internal/nfttable"
	"codeberg.org/monostack/gizmo/internal/reconcile"
	"codeberg.org/monostack/gizmo/internal/svclog"
)

// TableName is the accounting table (family inet).
const TableName = "gizmo_acct"

// MaxAddrs bounds each set: a full set stops learning new addresses (they
// go uncounted) but never fails forwarding.
const MaxAddrs = 65536

// Plan names the interfaces between which traffic is counted.
type Plan struct {
	LAN, WAN string
	// IPv4Out, when set, is where the LAN's IPv4 leaves instead of WAN:
	// the CLAT's link on an IPv6-only line (services/clat). Its replies
	// still come in on WAN.
	IPv4Out string
}

// Bytes is one address's traffic.
type Bytes struct {
	Out, In uint64 // LAN→WAN (by source), WAN→LAN (by destination)
}

// Config configures the service.
type Config struct {
	Logger *slog.Logger
	// NetNS, if not zero, is a network namespace fd to program (tests).
	NetNS int
}

// Service keeps the accounting table in place and reads its counters.
type Service struct {
	cfg   Config
	log   *slog.Logger
	plans mailbox.Box[Plan]

	mu      sync.Mutex
	applied Plan
	errors  int
}

// New returns the service.
func New(cfg Config) (*Service, error) {
	return &Service{cfg: cfg, log: svclog.For(cfg.Logger, "accounting")}, nil
}

// Update hands the service a new plan; it never blocks and the newest plan
// wins.
func (s *Service) Update(p Plan) { s.plans.Put(p) }

// Run applies plans until ctx is done, then removes the table.
func (s *Service) Run(ctx context.Context) error {
	reconcile.Run(ctx, &s.plans, 5*time.Second, s.applyNew)
	if err := s.remove(); err != nil {
		s.log.Warn("removing the accounting table failed", "err", err)
	}
	return nil
}

// applyNew installs p unless it is the plan already installed.
func (s *Service) applyNew(p Plan) error {
	s.mu.Lock()
	same := s.applied == p
	s.mu.Unlock()
	if same {
		return nil
	}
	if err := s.apply(p); err != nil {
		s.mu.Lock()
		s.errors++
		s.mu.Unlock()
		s.log.Warn("installing the accounting table failed; retrying", "err", err)
		return err
	}
	s.mu.Lock()
	s.applied = p
	s.mu.Unlock()
	return nil
}

func (s *Service) conn() (*nftables.Conn, error) {
	if s.cfg.NetNS != 0 {
		return nftables.New(nftables.WithNetNSFd(s.cfg.NetNS))
	}
	return nftables.New()
}

func ifname(n string) []byte {
	b := make([]byte, 16)
	copy(b, n)
	return b
}

// direction is one counting rule: traffic from in to out, keyed by the
// source or destination address of one family.
type direction struct {
	set         string
	ipv6        bool
	fromLAN     bool // key by source address, LAN→WAN
	offset, len uint32
}

var directions = []direction{
	{"out6", true, true, 8, 16},  // ip6 saddr
	{"in6", true, false, 24, 16}, // ip6 daddr
	{"out4", false, true, 12, 4}, // ip saddr (before SNAT: forward runs first)
	{"in4", false, false, 16, 4}, // ip daddr (after de-NAT: prerouting ran)
}

// apply replaces the table in one batch. Counters restart from zero with a
// new table, which the consumers treat as a counter reset.
func (s *Service) apply(p Plan) error {
	if p.LAN == "" || p.WAN == "" {
		return errors.New("accounting: plan needs a LAN and a WAN interface")
	}
	c, err := s.conn()
	if err != nil {
		return fmt.Errorf("accounting: %w", err)
	}
	defer c.CloseLasting()
	t := nfttable.Fresh(c, &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName})
	ch := c.AddChain(&nftables.Chain{
		Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityRef(-150),
		Policy: policyPtr(nftables.ChainPolicyAccept),
	})
	for _, d := range directions {
		keyType := nftables.TypeIPAddr
		proto := byte(unix.NFPROTO_IPV4)
		if d.ipv6 {
			keyType, proto = nftables.TypeIP6Addr, unix.NFPROTO_IPV6
		}
		set := &nftables.Set{Table: t, Name: d.set, KeyType: keyType, Dynamic: true, Size: MaxAddrs}
		if err := c.AddSet(set, nil); err != nil {
			return fmt.Errorf("accounting: set %s: %w", d.set, err)
		}
		in, out := p.LAN, p.WAN
		if !d.ipv6 && p.IPv4Out != "" {
			out = p.IPv4Out
		}
		if !d.fromLAN {
			in, out = p.WAN, p.LAN
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(in)},
			&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(out)},
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: d.offset, Len: d.len},
			&expr.Dynset{SrcRegKey: 1, SetName: d.set, Operation: uint32(unix.NFT_DYNSET_OP_UPDATE), Exprs: []expr.Any{&expr.Counter{}}},
		}})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("accounting: install table: %w", err)
	}
	return nil
}

func policyPtr(p nftables.ChainPolicy) *nftables.ChainPolicy { return &p }

func (s *Service) remove() error {
	c, err := s.conn()
	if err != nil {
		return err
	}
	defer c.CloseLasting()
	nfttable.Remove(c, &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName})
	return c.Flush()
}

// Read returns the bytes counted per address, split by family: native
// IPv6 and legacy IPv4.
func (s *Service) Read() (v6, v4 map[netip.Addr]Bytes, err error) {
	c, err := s.conn()
	if err != nil {
		return nil, nil, fmt.Errorf("accounting: %w", err)
	}
	defer c.CloseLasting()
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}
	v6, v4 = map[netip.Addr]Bytes{}, map[netip.Addr]Bytes{}
	for _, d := range directions {
		set, err := c.GetSetByName(t, d.set)
		if err != nil {
			return nil, nil, fmt.Errorf("accounting: set %s: %w", d.set, err)
		}
		elems, err := c.GetSetElements(set)
		if err != nil {
			return nil, nil, fmt.Errorf("accounting: elements of %s: %w", d.set, err)
		}
		m := v4
		if d.ipv6 {
			m = v6
		}
		for _, e := range elems {
			a, ok := netip.AddrFromSlice(e.Key)
			if !ok || e.Counter == nil {
				continue
			}
			b := m[a]
			if d.fromLAN {
				b.Out += e.Counter.Bytes
			} else {
				b.In += e.Counter.Bytes
			}
			m[a] = b
		}
	}
	return v6, v4, nil
}

// Stats are the service's own counters.
type Stats struct{ Errors int }

// Stats returns a snapshot.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Errors: s.errors}
}
