package firewall

import (
	"bytes"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/nfttable"
)

// elemsPerMessage keeps a set's element list in one netlink message far
// below 64 KiB (an element of the largest kind takes about 60 bytes).
const elemsPerMessage = 256

// Counter is a named counter's value.
type Counter struct {
	Packets uint64
	Bytes   uint64
}

// queue puts the whole ruleset into conn's batch: create the table if it
// is missing, delete it, and build it again. Flush sends everything in one
// nfnetlink transaction, which the kernel commits atomically: packets see
// either the old ruleset or the new one, never none, and a table left by a
// crashed daemon is replaced, not duplicated.
//
// carry gives each counter its starting value, so that counters survive
// the swap (and a daemon restart) instead of falling to zero.
func (rs Ruleset) queue(conn *nftables.Conn, carry map[string]Counter) error {
	t := nfttable.Fresh(conn, &nftables.Table{Family: nftables.TableFamilyINet, Name: rs.Table})

	for _, name := range rs.Counters {
		c := carry[name]
		conn.AddObj(&nftables.CounterObj{Table: t, Name: name, Packets: c.Packets, Bytes: c.Bytes})
	}

	sets := make(map[string]*nftables.Set, len(rs.Sets))
	for _, s := range rs.Sets {
		ns, elems, err := s.nft(t)
		if err != nil {
			return err
		}
		// A netlink attribute's length is 16 bits: the element list of
		// one message must stay under 64 KiB, so large sets go in chunks.
		first := elems[:min(len(elems), elemsPerMessage)]
		if err := conn.AddSet(ns, first); err != nil {
			return fmt.Errorf("firewall: set %s: %w", s.Name, err)
		}
		for rest := elems[len(first):]; len(rest) > 0; {
			n := min(len(rest), elemsPerMessage)
			if err := conn.SetAddElements(ns, rest[:n]); err != nil {
				return fmt.Errorf("firewall: set %s: %w", s.Name, err)
			}
			rest = rest[n:]
		}
		sets[s.Name] = ns
	}

	chains := make(map[string]*nftables.Chain, len(rs.Chains))
	for _, c := range rs.Chains {
		nc := &nftables.Chain{Name: c.Name, Table: t}
		if c.Hook != nil {
			hook, err := hookNum(c.Hook.Hook)
			if err != nil {
				return err
			}
			prio := nftables.ChainPriority(c.Hook.Priority)
			policy := nftables.ChainPolicyAccept
			if c.Hook.Policy == Drop {
				policy = nftables.ChainPolicyDrop
			}
			nc.Hooknum = hook
			nc.Priority = &prio
			nc.Type = nftables.ChainType(c.Hook.Type)
			nc.Policy = &policy
		}
		chains[c.Name] = conn.AddChain(nc)
	}
	for _, c := range rs.Chains {
		for _, r := range c.Rules {
			exprs, err := r.exprs(sets)
			if err != nil {
				return fmt.Errorf("firewall: chain %s: rule %q: %w", c.Name, r, err)
			}
			nr := &nftables.Rule{Table: t, Chain: chains[c.Name], Exprs: exprs}
			if r.Comment != "" {
				nr.UserData = userdata.AppendString(nil, userdata.TypeComment, r.Comment)
			}
			conn.AddRule(nr)
		}
	}
	return nil
}

func hookNum(h string) (*nftables.ChainHook, error) {
	switch h {
	case "prerouting":
		return nftables.ChainHookPrerouting, nil
	case "input":
		return nftables.ChainHookInput, nil
	case "forward":
		return nftables.ChainHookForward, nil
	case "output":
		return nftables.ChainHookOutput, nil
	case "postrouting":
		return nftables.ChainHookPostrouting, nil
	}
	return nil, fmt.Errorf("firewall: unknown hook %q", h)
}

var (
	typeIP6Service = nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetProto, nftables.TypeInetService)
	typeService    = nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService)
)

// nft returns the kernel set and its elements.
func (s Set) nft(t *nftables.Table) (*nftables.Set, []nftables.SetElement, error) {
	ns := &nftables.Set{Table: t, Name: s.Name}
	var elems []nftables.SetElement
	switch s.Kind {
	case SetIPv6Prefixes, SetIPv4Prefixes:
		ns.KeyType = nftables.TypeIP6Addr
		bits := 128
		if s.Kind == SetIPv4Prefixes {
			ns.KeyType, bits = nftables.TypeIPAddr, 32
		}
		for _, p := range s.Prefixes {
			if p.Addr().BitLen() != bits || p.Bits() != s.Bits {
				return nil, nil, fmt.Errorf("firewall: set %s: %v is not a /%d of the set's family", s.Name, p, s.Bits)
			}
			elems = append(elems, nftables.SetElement{Key: p.Masked().Addr().AsSlice()})
		}
	case SetIPv6Services:
		ns.KeyType, ns.Concatenation = typeIP6Service, true
		for _, e := range s.Services {
			if !e.Addr.Is6() {
				return nil, nil, fmt.Errorf("firewall: set %s: %v is not IPv6", s.Name, e.Addr)
			}
			a := e.Addr.As16()
			elems = append(elems, nftables.SetElement{Key: concat(a[:], e.Port)})
		}
	case SetServices:
		ns.KeyType, ns.Concatenation = typeService, true
		for _, e := range s.Services {
			elems = append(elems, nftables.SetElement{Key: concat(nil, e.Port)})
		}
	case SetICMPv6Types, SetICMPTypes:
		ns.KeyType = nftables.TypeICMP6Type
		if s.Kind == SetICMPTypes {
			ns.KeyType = nftables.TypeICMPType
		}
		for _, ty := range s.Types {
			elems = append(elems, nftables.SetElement{Key: []byte{ty}})
		}
	default:
		return nil, nil, fmt.Errorf("firewall: set %s: unknown kind %d", s.Name, s.Kind)
	}
	return ns, elems, nil
}

// concat encodes addr . proto . port the way the kernel lays out a
// concatenation: each field padded to a 4-byte register.
func concat(addr []byte, p Port) []byte {
	k := append([]byte(nil), addr...)
	k = append(k, byte(p.Proto), 0, 0, 0)
	return append(k, byte(p.Port>>8), byte(p.Port), 0, 0)
}

// ifname pads an interface name to IFNAMSIZ, as nft compares it.
func ifname(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}

func cmpOp(not bool) expr.CmpOp {
	if not {
		return expr.CmpOpNeq
	}
	return expr.CmpOpEq
}

// exprs compiles a rule. It adds the protocol dependencies nft would add
// (meta nfproto before an ip6 header field in an inet table, meta l4proto
// before a udp port), once per rule.
func (r Rule) exprs(sets map[string]*nftables.Set) ([]expr.Any, error) {
	c := &ruleCompiler{sets: sets}
	for _, m := range r.Match {
		if err := c.match(m); err != nil {
			return nil, err
		}
	}
	if r.Counter != "" {
		c.out = append(c.out, &expr.Objref{Type: int(nftables.ObjTypeCounter), Name: r.Counter})
	}
	if err := c.verdict(r.Verdict); err != nil {
		return nil, err
	}
	return c.out, nil
}

// ruleCompiler accumulates one rule's expressions and remembers which
// protocol dependencies it has already emitted.
type ruleCompiler struct {
	sets map[string]*nftables.Set
	out  []expr.Any
	fam  int   // 4 or 6 once meta nfproto is matched
	l4   Proto // once meta l4proto is matched
}

func (c *ruleCompiler) add(e ...expr.Any) { c.out = append(c.out, e...) }

// needFamily matches meta nfproto unless the rule already did.
func (c *ruleCompiler) needFamily(f int) {
	if c.fam == f {
		return
	}
	nfp := byte(unix.NFPROTO_IPV6)
	if f == 4 {
		nfp = unix.NFPROTO_IPV4
	}
	c.add(&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfp}})
	c.fam = f
}

// needL4 matches meta l4proto unless the rule already did.
func (c *ruleCompiler) needL4(p Proto) {
	if c.l4 == p {
		return
	}
	c.add(&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(p)}})
	c.l4 = p
}

// lookup matches register reg against the named set.
func (c *ruleCompiler) lookup(reg uint32, name string, not bool) error {
	s, ok := c.sets[name]
	if !ok {
		return fmt.Errorf("no set %q", name)
	}
	c.add(&expr.Lookup{SourceRegister: reg, SetName: s.Name, SetID: s.ID, Invert: not})
	return nil
}

// addrField loads the source or destination address of family f into
// register 1.
func addrField(f int, dst bool) *expr.Payload {
	p := &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader}
	switch {
	case f == 6 && !dst:
		p.Offset, p.Len = 8, 16
	case f == 6 && dst:
		p.Offset, p.Len = 24, 16
	case f == 4 && !dst:
		p.Offset, p.Len = 12, 4
	default:
		p.Offset, p.Len = 16, 4
	}
	return p
}

// thDport loads the transport header's destination port into reg.
func thDport(reg uint32) *expr.Payload {
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}
}

// match compiles one match of the rule.
func (c *ruleCompiler) match(m Match) error {
	switch m.Kind {
	case MatchIIFName, MatchOIFName:
		key := expr.MetaKeyIIFNAME
		if m.Kind == MatchOIFName {
			key = expr.MetaKeyOIFNAME
		}
		c.add(&expr.Meta{Key: key, Register: 1},
			&expr.Cmp{Op: cmpOp(m.Not), Register: 1, Data: ifname(m.Name)})
	case MatchNFProto:
		if m.Not {
			return fmt.Errorf("negated nfproto is not supported")
		}
		c.needFamily(m.Family)
	case MatchL4Proto:
		if m.Not {
			c.add(&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{byte(m.Proto)}})
			return nil
		}
		c.needL4(m.Proto)
	case MatchCtState:
		c.ctState(m)
	case MatchSaddrSet, MatchDaddrSet:
		return c.addrSet(m)
	case MatchSaddrPrefix, MatchDaddrPrefix:
		return c.addrPrefix(m)
	case MatchSport, MatchDport:
		c.port(m)
	case MatchICMPTypeSet:
		return c.icmpTypeSet(m)
	case MatchServiceSet:
		c.add(&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, thDport(9))
		return c.lookup(1, m.Name, m.Not)
	case MatchDaddrServiceSet, MatchTokenServiceSet:
		return c.hostServiceSet(m)
	case MatchTCPFlags:
		c.needL4(TCP)
		c.add(&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{byte(m.Bits)}, Xor: []byte{0}},
			&expr.Cmp{Op: cmpOp(m.Not), Register: 1, Data: []byte{m.Flags}})
	case MatchMark:
		mark := binaryutil.NativeEndian.PutUint32(m.Mark)
		c.add(&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mark, Xor: make([]byte, 4)},
			&expr.Cmp{Op: cmpOp(m.Not), Register: 1, Data: mark})
	default:
		return fmt.Errorf("unknown match kind %d", m.Kind)
	}
	return nil
}

// ctState matches when any of m.Bits is set in the conntrack state (or, if
// negated, none is).
func (c *ruleCompiler) ctState(m Match) {
	op := expr.CmpOpNeq // some bit set
	if m.Not {
		op = expr.CmpOpEq
	}
	c.add(&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(m.Bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: op, Register: 1, Data: make([]byte, 4)})
}

// addrSet looks the source or destination address up in a set, masked to
// m.Mask bits when the set holds prefixes of one length.
func (c *ruleCompiler) addrSet(m Match) error {
	c.needFamily(m.Family)
	field := addrField(m.Family, m.Kind == MatchDaddrSet)
	c.add(field)
	if m.Mask != 0 && m.Mask != int(field.Len)*8 {
		if m.Mask < 0 || m.Mask > int(field.Len)*8 {
			return fmt.Errorf("mask /%d for IPv%d", m.Mask, m.Family)
		}
		c.add(&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: field.Len,
			Mask: prefixMask(m.Mask, int(field.Len)), Xor: make([]byte, field.Len)})
	}
	return c.lookup(1, m.Name, m.Not)
}

// addrPrefix compares the source or destination address with one prefix.
func (c *ruleCompiler) addrPrefix(m Match) error {
	c.needFamily(m.Family)
	if m.Prefix.Addr().BitLen() != map[int]int{4: 32, 6: 128}[m.Family] {
		return fmt.Errorf("prefix %v is not IPv%d", m.Prefix, m.Family)
	}
	c.add(addrField(m.Family, m.Kind == MatchDaddrPrefix))
	addr := m.Prefix.Masked().Addr().AsSlice()
	if m.Prefix.Bits() < m.Prefix.Addr().BitLen() {
		c.add(&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(len(addr)),
			Mask: prefixMask(m.Prefix.Bits(), len(addr)), Xor: make([]byte, len(addr))})
	}
	c.add(&expr.Cmp{Op: cmpOp(m.Not), Register: 1, Data: addr})
	return nil
}

// port compares the source or destination port of m.Port.Proto.
func (c *ruleCompiler) port(m Match) {
	c.needL4(m.Port.Proto)
	off := uint32(0)
	if m.Kind == MatchDport {
		off = 2
	}
	c.add(&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: 2},
		&expr.Cmp{Op: cmpOp(m.Not), Register: 1, Data: binaryutil.BigEndian.PutUint16(m.Port.Port)})
}

// icmpTypeSet looks the ICMP or ICMPv6 type up in a set.
func (c *ruleCompiler) icmpTypeSet(m Match) error {
	c.needFamily(m.Family)
	if m.Family == 4 {
		c.needL4(1)
	} else {
		c.needL4(58)
	}
	c.add(&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1})
	return c.lookup(1, m.Name, m.Not)
}

// hostServiceSet looks up destination address . protocol . port, or with
// MatchTokenServiceSet only the address's interface identifier.
func (c *ruleCompiler) hostServiceSet(m Match) error {
	c.needFamily(6)
	c.add(addrField(6, true))
	if m.Kind == MatchTokenServiceSet {
		// The interface identifier is the low 64 bits (RFC 4291
		// §2.5.1); masking the prefix away is what makes the rule
		// survive renumbering.
		mask := append(make([]byte, 8), bytes.Repeat([]byte{0xff}, 8)...)
		c.add(&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 16, Mask: mask, Xor: make([]byte, 16)})
	}
	// A 16-byte address fills register 1 (32-bit registers 8-11); the
	// protocol goes to register 2 (32-bit 12), the port to 32-bit register
	// 13, as nft lays out a concatenation.
	c.add(&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 2}, thDport(13))
	return c.lookup(1, m.Name, m.Not)
}

// verdict compiles what the rule does when it matches.
func (c *ruleCompiler) verdict(v Verdict) error {
	switch v.Kind {
	case Accept:
		c.add(&expr.Verdict{Kind: expr.VerdictAccept})
	case Drop:
		c.add(&expr.Verdict{Kind: expr.VerdictDrop})
	case Jump:
		c.add(&expr.Verdict{Kind: expr.VerdictJump, Chain: v.Chain})
	case Masquerade:
		c.add(&expr.Masq{})
	case SourceNAT:
		if !v.Addr.Is4() || v.Ports.Min == 0 || v.Ports.Max < v.Ports.Min {
			return fmt.Errorf("snat to %v:%d-%d", v.Addr, v.Ports.Min, v.Ports.Max)
		}
		// Specified sets NF_NAT_RANGE_PROTO_SPECIFIED: without it the
		// kernel ignores the port registers. (expr.Masq cannot set it,
		// which is why a port range needs snat to the WAN address.)
		c.add(&expr.Immediate{Register: 1, Data: v.Addr.AsSlice()},
			&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(v.Ports.Min)},
			&expr.Immediate{Register: 3, Data: binaryutil.BigEndian.PutUint16(v.Ports.Max)},
			&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4,
				RegAddrMin: 1, RegProtoMin: 2, RegProtoMax: 3, Specified: true})
	}
	return nil
}

func prefixMask(bits, n int) []byte {
	m := make([]byte, n)
	for i := range m {
		switch {
		case bits >= 8:
			m[i] = 0xff
			bits -= 8
		case bits > 0:
			m[i] = byte(0xff << (8 - bits))
			bits = 0
		}
	}
	return m
}
