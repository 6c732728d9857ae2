package firewall

import (
	"bytes"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
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
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: rs.Table}
	conn.AddTable(t)
	conn.DelTable(t)
	conn.AddTable(t)

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
	var out []expr.Any
	fam := 0
	var l4 Proto
	needFamily := func(f int) {
		if fam == f {
			return
		}
		nfp := byte(unix.NFPROTO_IPV6)
		if f == 4 {
			nfp = unix.NFPROTO_IPV4
		}
		out = append(out,
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfp}})
		fam = f
	}
	needL4 := func(p Proto) {
		if l4 == p {
			return
		}
		out = append(out,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(p)}})
		l4 = p
	}
	lookup := func(reg uint32, name string, not bool) error {
		s, ok := sets[name]
		if !ok {
			return fmt.Errorf("no set %q", name)
		}
		out = append(out, &expr.Lookup{SourceRegister: reg, SetName: s.Name, SetID: s.ID, Invert: not})
		return nil
	}
	addrField := func(f int, dst bool) *expr.Payload {
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
	thDport := func(reg uint32) *expr.Payload {
		return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}
	}

	for _, m := range r.Match {
		switch m.Kind {
		case MatchIIFName, MatchOIFName:
			key := expr.MetaKeyIIFNAME
			if m.Kind == MatchOIFName {
				key = expr.MetaKeyOIFNAME
			}
			out = append(out, &expr.Meta{Key: key, Register: 1},
				&expr.Cmp{Op: cmpOp(m.Not), Register: 1, Data: ifname(m.Name)})
		case MatchNFProto:
			if m.Not {
				return nil, fmt.Errorf("negated nfproto is not supported")
			}
			needFamily(m.Family)
		case MatchL4Proto:
			if m.Not {
				out = append(out,
					&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
					&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{byte(m.Proto)}})
				continue
			}
			needL4(m.Proto)
		case MatchCtState:
			op := expr.CmpOpNeq // some bit set
			if m.Not {
				op = expr.CmpOpEq
			}
			out = append(out,
				&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
				&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
					Mask: binaryutil.NativeEndian.PutUint32(m.Bits), Xor: make([]byte, 4)},
				&expr.Cmp{Op: op, Register: 1, Data: make([]byte, 4)})
		case MatchSaddrSet, MatchDaddrSet:
			needFamily(m.Family)
			field := addrField(m.Family, m.Kind == MatchDaddrSet)
			out = append(out, field)
			if m.Mask != 0 && m.Mask != int(field.Len)*8 {
				if m.Mask < 0 || m.Mask > int(field.Len)*8 {
					return nil, fmt.Errorf("mask /%d for IPv%d", m.Mask, m.Family)
				}
				out = append(out, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: field.Len,
					Mask: prefixMask(m.Mask, int(field.Len)), Xor: make([]byte, field.Len)})
			}
			if err := lookup(1, m.Name, m.Not); err != nil {
				return nil, err
			}
		case MatchSaddrPrefix, MatchDaddrPrefix:
			needFamily(m.Family)
			if m.Prefix.Addr().BitLen() != map[int]int{4: 32, 6: 128}[m.Family] {
				return nil, fmt.Errorf("prefix %v is not IPv%d", m.Prefix, m.Family)
			}
			out = append(out, addrField(m.Family, m.Kind == MatchDaddrPrefix))
			addr := m.Prefix.Masked().Addr().AsSlice()
			if m.Prefix.Bits() < m.Prefix.Addr().BitLen() {
				out = append(out, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(len(addr)),
					Mask: prefixMask(m.Prefix.Bits(), len(addr)), Xor: make([]byte, len(addr))})
			}
			out = append(out, &expr.Cmp{Op: cmpOp(m.Not), Register: 1, Data: addr})
		case MatchSport, MatchDport:
			needL4(m.Port.Proto)
			off := uint32(0)
			if m.Kind == MatchDport {
				off = 2
			}
			out = append(out,
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: 2},
				&expr.Cmp{Op: cmpOp(m.Not), Register: 1, Data: binaryutil.BigEndian.PutUint16(m.Port.Port)})
		case MatchICMPTypeSet:
			needFamily(m.Family)
			if m.Family == 4 {
				needL4(1)
			} else {
				needL4(58)
			}
			out = append(out, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1})
			if err := lookup(1, m.Name, m.Not); err != nil {
				return nil, err
			}
		case MatchServiceSet:
			out = append(out, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, thDport(9))
			if err := lookup(1, m.Name, m.Not); err != nil {
				return nil, err
			}
		case MatchDaddrServiceSet, MatchTokenServiceSet:
			needFamily(6)
			out = append(out, addrField(6, true))
			if m.Kind == MatchTokenServiceSet {
				// The interface identifier is the low 64 bits (RFC 4291
				// §2.5.1); masking the prefix away is what makes the rule
				// survive renumbering.
				mask := append(make([]byte, 8), bytes.Repeat([]byte{0xff}, 8)...)
				out = append(out, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 16, Mask: mask, Xor: make([]byte, 16)})
			}
			// A 16-byte address fills register 1 (32-bit registers 8-11);
			// the protocol goes to register 2 (32-bit 12), the port to
			// 32-bit register 13, as nft lays out a concatenation.
			out = append(out, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 2}, thDport(13))
			if err := lookup(1, m.Name, m.Not); err != nil {
				return nil, err
			}
		case MatchTCPFlags:
			needL4(TCP)
			out = append(out,
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
				&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{byte(m.Bits)}, Xor: []byte{0}},
				&expr.Cmp{Op: cmpOp(m.Not), Register: 1, Data: []byte{m.Flags}})
		case MatchMark:
			mark := binaryutil.NativeEndian.PutUint32(m.Mark)
			out = append(out,
				&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
				&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mark, Xor: make([]byte, 4)},
				&expr.Cmp{Op: cmpOp(m.Not), Register: 1, Data: mark})
		default:
			return nil, fmt.Errorf("unknown match kind %d", m.Kind)
		}
	}
	if r.Counter != "" {
		out = append(out, &expr.Objref{Type: int(nftables.ObjTypeCounter), Name: r.Counter})
	}
	switch r.Verdict.Kind {
	case Accept:
		out = append(out, &expr.Verdict{Kind: expr.VerdictAccept})
	case Drop:
		out = append(out, &expr.Verdict{Kind: expr.VerdictDrop})
	case Jump:
		out = append(out, &expr.Verdict{Kind: expr.VerdictJump, Chain: r.Verdict.Chain})
	case Masquerade:
		out = append(out, &expr.Masq{})
	case SourceNAT:
		v := r.Verdict
		if !v.Addr.Is4() || v.Ports.Min == 0 || v.Ports.Max < v.Ports.Min {
			return nil, fmt.Errorf("snat to %v:%d-%d", v.Addr, v.Ports.Min, v.Ports.Max)
		}
		// Specified sets NF_NAT_RANGE_PROTO_SPECIFIED: without it the
		// kernel ignores the port registers. (expr.Masq cannot set it,
		// which is why a port range needs snat to the WAN address.)
		out = append(out,
			&expr.Immediate{Register: 1, Data: v.Addr.AsSlice()},
			&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(v.Ports.Min)},
			&expr.Immediate{Register: 3, Data: binaryutil.BigEndian.PutUint16(v.Ports.Max)},
			&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4,
				RegAddrMin: 1, RegProtoMin: 2, RegProtoMax: 3, Specified: true})
	}
	return out, nil
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
