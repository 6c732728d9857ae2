package netlab

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// PDPool is the pool Kea currently delegates from (PDPoolA after Up).
func (l *Lab) PDPool() netip.Prefix {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pdPool
}

// Renumber makes the ISP delegate from the other pool (PDPoolA <-> PDPoolB):
// it stops Kea, forgets every DHCPv6 lease, rewrites the config and starts
// Kea again. The next Renew or Rebind from the gizmo gets a prefix from the
// new pool, and the old prefix back with lifetimes 0 (RFC 8415 §18.3.4).
// It returns the new pool.
func (l *Lab) Renumber(ctx context.Context) (netip.Prefix, error) {
	next := PDPoolB
	if l.PDPool() == PDPoolB {
		next = PDPoolA
	}
	err := l.restartKea6(ctx, true, func(p keaPaths) ([]byte, error) { return l.kea6Config(p, next) },
		func() { l.pdPool = next })
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("netlab: renumber: %w", err)
	}
	l.logger.Info("renumbered: Kea delegates from a new pool", "pool", next)
	return next, nil
}

// A Lease is one current lease in Kea's lease file.
type Lease struct {
	Prefix    netip.Prefix // the address as a /128 or /32, or the delegated prefix
	Type      string       // "IA_NA", "IA_TA", "IA_PD" or "V4"
	ClientID  string       // DUID (v6) or hardware address (v4)
	IAID      uint32
	Hostname  string
	Valid     time.Duration
	Preferred time.Duration
	Expire    time.Time
}

// KeaLeases6 returns Kea's current DHCPv6 leases (IA_PD leases are the
// delegations). Expired and released leases are left out.
func (l *Lab) KeaLeases6() ([]Lease, error) {
	return readLeases(kea6Paths(l.runDir).leases, true, time.Now())
}

// KeaLeases4 returns Kea's current DHCPv4 leases on the WAN link.
func (l *Lab) KeaLeases4() ([]Lease, error) {
	return readLeases(kea4Paths(l.runDir).leases, false, time.Now())
}

// DelegatedPrefixes returns the prefixes Kea currently delegates.
func (l *Lab) DelegatedPrefixes() ([]netip.Prefix, error) {
	leases, err := l.KeaLeases6()
	if err != nil {
		return nil, err
	}
	var ps []netip.Prefix
	for _, le := range leases {
		if le.Type == "IA_PD" {
			ps = append(ps, le.Prefix)
		}
	}
	return ps, nil
}

// readLeases parses a Kea memfile (CSV with a header). The file is a log:
// later rows for the same address replace earlier ones, and a row with
// valid lifetime 0 deletes the lease.
func readLeases(path string, v6 bool, now time.Time) ([]Lease, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("netlab: leases: %w", err)
	}
	defer f.Close()
	return parseLeases(f, v6, now)
}

func parseLeases(r io.Reader, v6 bool, now time.Time) ([]Lease, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err == io.EOF {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("netlab: leases: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(h)] = i
	}
	field := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return rec[i]
		}
		return ""
	}
	for _, need := range []string{"address", "valid_lifetime", "expire"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("netlab: leases: no %q column in header %q", need, header)
		}
	}
	type key struct{ addr, typ string }
	current := map[key]Lease{}
	var order []key
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("netlab: leases: %w", err)
		}
		addr, err := netip.ParseAddr(field(rec, "address"))
		if err != nil {
			return nil, fmt.Errorf("netlab: leases: address: %w", err)
		}
		valid, _ := strconv.ParseUint(field(rec, "valid_lifetime"), 10, 32)
		expire, _ := strconv.ParseInt(field(rec, "expire"), 10, 64)
		le := Lease{
			Type:     "V4",
			Hostname: field(rec, "hostname"),
			Valid:    time.Duration(valid) * time.Second,
			Expire:   time.Unix(expire, 0),
		}
		bits := addr.BitLen()
		if v6 {
			le.ClientID = field(rec, "duid")
			switch field(rec, "lease_type") {
			case "0":
				le.Type = "IA_NA"
			case "1":
				le.Type = "IA_TA"
			case "2":
				le.Type = "IA_PD"
				if n, err := strconv.Atoi(field(rec, "prefix_len")); err == nil && n >= 0 && n <= 128 {
					bits = n
				}
			default:
				return nil, fmt.Errorf("netlab: leases: unknown lease_type %q", field(rec, "lease_type"))
			}
			iaid, _ := strconv.ParseUint(field(rec, "iaid"), 10, 32)
			le.IAID = uint32(iaid)
			pref, _ := strconv.ParseUint(field(rec, "pref_lifetime"), 10, 32)
			le.Preferred = time.Duration(pref) * time.Second
		} else {
			le.ClientID = field(rec, "hwaddr")
		}
		le.Prefix = netip.PrefixFrom(addr, bits)
		k := key{addr.String(), le.Type}
		if _, seen := current[k]; !seen {
			order = append(order, k)
		}
		// state 0 is "default" (assigned); 1 declined, 2 expired-reclaimed.
		if valid == 0 || field(rec, "state") != "" && field(rec, "state") != "0" {
			le.Valid = 0
		}
		current[k] = le
	}
	var out []Lease
	for _, k := range order {
		le := current[k]
		if le.Valid == 0 || !le.Expire.After(now) {
			continue
		}
		out = append(out, le)
	}
	return out, nil
}
