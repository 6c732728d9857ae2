// Package dhcp6info is a stateless DHCPv6 server (RFC 8415 §6.1): it answers
// Information-request on the LAN with the DNS servers and the domain search
// list, so that hosts which ask DHCPv6 (the RA's O flag) get the same DNS as
// those reading the RA's RDNSS. It leases nothing.
package dhcp6info

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/dhcpv6/server6"
	"github.com/insomniacslk/dhcp/iana"
	"golang.org/x/net/ipv6"

	"codeberg.org/monostack/gizmo/internal/serveloop"
	"codeberg.org/monostack/gizmo/internal/servicecore"
)

// Config configures the server.
type Config struct {
	// Interface is the LAN interface, e.g. "lan0".
	Interface string
	// ServerID is the server's DUID. When nil, a DUID-LL of the interface's
	// MAC is used (RFC 8415 §11.4): stable without any state on disk.
	ServerID dhcpv6.DUID
	Logger   *slog.Logger
}

// Stats are the server's counters since it was created.
type Stats struct {
	Received   uint64
	Replies    uint64 // to Information-request
	Advertises uint64 // NoAddrsAvail, to Solicit
	// Dropped counts messages left unanswered, by reason (the Reason*
	// constants); DroppedTotal is their sum.
	Dropped      map[string]uint64
	DroppedTotal uint64
	SendErrors   uint64
}

// clone copies st with its own map of drops.
func (st Stats) clone() Stats {
	st.Dropped = maps.Clone(st.Dropped)
	return st
}

// Service is the stateless DHCPv6 server. Create it with New.
type Service struct {
	core servicecore.Core[Plan, Stats]
	cfg  Config

	// plan is the plan in force; only Run's goroutine uses it, and it
	// outlives a re-opened socket.
	plan Plan
}

// Update hands the service a new plan. It never blocks; the newest plan
// wins over one not yet taken.
func (s *Service) Update(p Plan) { s.core.Update(p) }

// Stats returns a snapshot of the service's counters.
func (s *Service) Stats() Stats { return s.core.Stats() }

// New returns a server for cfg.Interface; Run starts it. It answers nothing
// until Update gives it an enabled plan; a new plan applies to the next
// message.
func New(cfg Config) (*Service, error) {
	s := &Service{cfg: cfg}
	if err := s.core.Init("dhcp6info", cfg.Interface, cfg.Logger, Stats{Dropped: map[string]uint64{}}, Stats.clone); err != nil {
		return nil, err
	}
	return s, nil
}

// Run serves until ctx is done. Interface errors (missing, gone) are logged
// and retried; Run returns nil once ctx is done.
func (s *Service) Run(ctx context.Context) error {
	return s.core.Serve(ctx, "serving stopped, retrying", s.serve)
}

func (s *Service) serve(ctx context.Context) error {
	ifi, err := net.InterfaceByName(s.cfg.Interface)
	if err != nil {
		return fmt.Errorf("dhcp6info: %w", err)
	}
	serverID := s.cfg.ServerID
	if serverID == nil {
		if len(ifi.HardwareAddr) == 0 {
			return fmt.Errorf("dhcp6info: %s has no MAC address for a DUID-LL; set Config.ServerID", ifi.Name)
		}
		serverID = &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: ifi.HardwareAddr}
	}
	// Bound to the LAN interface, so that nothing on the WAN is ever
	// answered: a DHCPv6 server on the WAN would answer the ISP's other
	// customers (RFC 7084 §4.3 puts the CE router's DHCPv6 server on its LAN
	// interfaces).
	conn, err := server6.NewIPv6UDPConn(ifi.Name, &net.UDPAddr{IP: net.IPv6unspecified, Port: dhcpv6.DefaultServerPort})
	if err != nil {
		return fmt.Errorf("dhcp6info: listen on %s: %w", ifi.Name, err)
	}
	defer conn.Close()
	// RFC 8415 §7.1: clients send to All_DHCP_Relay_Agents_and_Servers.
	group := &net.UDPAddr{IP: dhcpv6.AllDHCPRelayAgentsAndServers}
	if err := ipv6.NewPacketConn(conn).JoinGroup(ifi, group); err != nil {
		return fmt.Errorf("dhcp6info: join %s on %s: %w", group.IP, ifi.Name, err)
	}
	s.core.Log.Info("serving stateless DHCPv6", "server_id", serverID.String())

	// A socket bound to a deleted interface just goes quiet: watch for the
	// interface being removed or re-created (a bridge rebuilt), and start
	// over on the new one.
	done := make(chan struct{})
	defer close(done)
	gone := make(chan error, 1)
	go func() {
		check := time.NewTicker(serveloop.CheckInterval)
		defer check.Stop()
		for {
			select {
			case <-ctx.Done():
				conn.Close()
				return
			case <-done:
				return
			case <-check.C:
				if err := serveloop.SameInterface(ifi); err != nil {
					gone <- fmt.Errorf("dhcp6info: %w", err)
					conn.Close()
					return
				}
			}
		}
	}()

	b := make([]byte, 65536)
	for {
		n, peer, err := conn.ReadFromUDP(b)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			select {
			case err := <-gone:
				return err
			default:
			}
			return fmt.Errorf("dhcp6info: read on %s: %w", ifi.Name, err)
		}
		if p, ok := s.core.Plans().Take(); ok {
			s.plan = p
		}
		reply, reason := respond(b[:n], s.plan, serverID)
		s.core.Count(func(st *Stats) {
			st.Received++
			if reason != "" {
				st.Dropped[reason]++
				st.DroppedTotal++
			}
		})
		if reply == nil {
			if reason != ReasonDisabled {
				s.core.Log.Debug("no answer", "peer", peer, "reason", reason)
			}
			continue
		}
		if _, err := conn.WriteToUDP(reply.ToBytes(), peer); err != nil {
			s.core.Count(func(st *Stats) { st.SendErrors++ })
			s.core.Log.Warn("sending failed", "peer", peer, "type", reply.MessageType.String(), "err", err)
			continue
		}
		s.core.Count(func(st *Stats) {
			if reply.MessageType == dhcpv6.MessageTypeReply {
				st.Replies++
			} else {
				st.Advertises++
			}
		})
	}
}
