package firewall

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/mailbox"
	"codeberg.org/monostack/gizmo/internal/nfttable"
	"codeberg.org/monostack/gizmo/internal/sockopt"
	"codeberg.org/monostack/gizmo/internal/svclog"
)

// Config configures the firewall service.
type Config struct {
	Logger *slog.Logger
	// NetNS, if not zero, is an open file descriptor of the network
	// namespace to program (tests); zero means the daemon's own.
	NetNS int
	// OnApplied, if set, is called after every attempt to apply a plan
	// with its outcome (nil on success). It must not block.
	OnApplied func(error)
}

// Stats is a snapshot for the dashboard and /metrics.
type Stats struct {
	Applied     uint64    // rulesets swapped in
	Failed      uint64    // plans refused (invalid) or failed to apply
	LastApplied time.Time // zero before the first
	LastError   string    // empty after a success
	Rules       int       // rules in the running ruleset
	Elements    int       // set elements in the running ruleset
	// FlowsEnded counts established flows whose conntrack entries were
	// deleted because the inbound rule that let them in went away;
	// FlowEndErrors the attempts that failed.
	FlowsEnded    uint64
	FlowEndErrors uint64
}

// sendBuffer is the netlink send buffer: room for one batch of about
// 250,000 set elements.
const sendBuffer = 16 << 20

// Service owns the gizmo's nftables table.
type Service struct {
	cfg  Config
	log  *slog.Logger
	next mailbox.Box[Plan] // validated, not yet applied

	mu       sync.Mutex // serializes applies and guards stats, last and lastPlan
	stats    Stats
	last     *Ruleset // the ruleset in the kernel, after a successful apply
	lastPlan *Plan    // the plan last rendered into it
}

// New returns a service; nothing touches the kernel until a plan arrives.
func New(cfg Config) (*Service, error) {
	if cfg.NetNS < 0 {
		return nil, fmt.Errorf("firewall: invalid netns fd %d", cfg.NetNS)
	}
	return &Service{cfg: cfg, log: svclog.For(cfg.Logger, "firewall")}, nil
}

// Run applies plans as they arrive until ctx is done. On return the
// ruleset stays in place: a router whose daemon stopped keeps filtering
// (fail closed), and the next start replaces the table atomically.
func (s *Service) Run(ctx context.Context) error {
	s.next.Each(ctx, func(p Plan) {
		if err := s.Apply(p); err != nil {
			s.log.Error("ruleset not applied; the previous one stays", "err", err)
		}
	})
	return nil
}

// Update validates p and, if it is valid, hands it to Run; a plan not yet
// applied is replaced by a newer one. An invalid plan is refused with the
// reason and the running ruleset stays as it is.
func (s *Service) Update(p Plan) error {
	if err := Validate(p); err != nil {
		s.fail(err)
		return err
	}
	s.next.Put(p)
	return nil
}

// Apply validates, renders and swaps in p in one atomic batch, now. Run
// uses it; tests and tools may call it directly.
func (s *Service) Apply(p Plan) error {
	if err := Validate(p); err != nil {
		s.fail(err)
		return err
	}
	rs := Render(p)

	s.mu.Lock()
	defer s.mu.Unlock()
	// The daemon replans on every observation; an unchanged ruleset is not
	// swapped again (a swap costs a netlink round trip and the counter
	// carry-over window).
	if s.last != nil && reflect.DeepEqual(*s.last, rs) {
		s.log.Debug("ruleset unchanged")
		return nil
	}
	conn, err := s.conn()
	if err != nil {
		return s.failLocked(err)
	}
	carry, err := s.counters(conn)
	if err != nil && !errors.Is(err, unix.ENOENT) {
		s.log.Warn("reading counters before the swap; they restart at zero", "err", err)
	}
	if err := rs.queue(conn, carry); err != nil {
		return s.failLocked(err)
	}
	if err := conn.Flush(); err != nil {
		return s.failLocked(fmt.Errorf("firewall: apply table inet %s: %w", rs.Table, err))
	}
	elems := 0
	for _, set := range rs.Sets {
		elems += len(set.Prefixes) + len(set.Services) + len(set.Types)
	}
	if old := s.lastPlan; old != nil && admitsLess(*old, p) {
		// The new rules are in place: what only the old ones let in
		// ends now (flows.go).
		n, err := s.endFlows(*old, p)
		s.stats.FlowsEnded += uint64(n)
		if err != nil {
			s.stats.FlowEndErrors++
			s.log.Warn("ending the flows of removed inbound rules", "ended", n, "err", err)
		} else if n > 0 {
			s.log.Info("ended the flows of removed inbound rules", "flows", n)
		}
	}
	s.last, s.lastPlan = &rs, &p
	s.stats.Applied++
	s.stats.LastApplied = time.Now()
	s.stats.LastError = ""
	s.stats.Rules = rs.RuleCount()
	s.stats.Elements = elems
	s.log.Info("ruleset applied", "rules", s.stats.Rules, "elements", elems,
		"delegated", p.Delegated, "token_rules", len(p.TokenRules),
		"prefix_rules", len(p.PrefixRules), "host_rules", len(p.HostRules))
	if s.cfg.OnApplied != nil {
		s.cfg.OnApplied(nil)
	}
	return nil
}

// Counters reads every named counter of the running ruleset.
func (s *Service) Counters() (map[string]Counter, error) {
	conn, err := s.conn()
	if err != nil {
		return nil, err
	}
	return s.counters(conn)
}

func (s *Service) counters(conn *nftables.Conn) (map[string]Counter, error) {
	objs, err := conn.GetObjects(&nftables.Table{Family: nftables.TableFamilyINet, Name: TableName})
	if err != nil {
		return nil, fmt.Errorf("firewall: read counters of table inet %s: %w", TableName, err)
	}
	out := make(map[string]Counter, len(objs))
	for _, o := range objs {
		if c, ok := o.(*nftables.CounterObj); ok {
			out[c.Name] = Counter{Packets: c.Packets, Bytes: c.Bytes}
		}
	}
	return out, nil
}

// Remove deletes the gizmo's table, for a clean teardown (lab down,
// tests). The daemon does not call it on a normal stop.
func (s *Service) Remove() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	conn, err := s.conn()
	if err != nil {
		return err
	}
	nfttable.Remove(conn, &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName})
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("firewall: remove table inet %s: %w", TableName, err)
	}
	s.last, s.lastPlan = nil, nil
	return nil
}

// Stats returns a snapshot of the service's own counters.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

func (s *Service) conn() (*nftables.Conn, error) {
	opts := []nftables.ConnOption{nftables.WithSockOptions(func(c *netlink.Conn) error {
		// Without NETLINK_CAP_ACK an error ack echoes the whole failed
		// message, and one for a large set overflows the socket buffer
		// (ENOBUFS) and hides the real error.
		if err := c.SetOption(netlink.CapAcknowledge, true); err != nil {
			return err
		}
		// The kernel takes a batch from one sendmsg, which must fit the
		// send buffer (EMSGSIZE otherwise): thousands of host addresses
		// need more than the default wmem_max.
		raw, err := c.SyscallConn()
		if err != nil {
			return err
		}
		return sockopt.Set(raw, "netlink", sockopt.SendBufferForce(sendBuffer))
	})}
	if s.cfg.NetNS != 0 {
		opts = append(opts, nftables.WithNetNSFd(s.cfg.NetNS))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("firewall: netlink: %w", err)
	}
	return c, nil
}

func (s *Service) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.failLocked(err)
}

func (s *Service) failLocked(err error) error {
	s.stats.Failed++
	s.stats.LastError = err.Error()
	if s.cfg.OnApplied != nil {
		s.cfg.OnApplied(err)
	}
	return err
}
