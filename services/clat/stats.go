package clat

import "net/netip"

// counters are the outcome counters the CLAT program uses, by name, with
// their index in enum counter of services/nat64/bpf/nat64.h (the program
// counts into the NAT64's counter layout; counters_test.go checks the
// indexes against the header).
var counters = []struct {
	name  string
	enum  string // the C name
	index uint32
}{
	{"translated_in", "C_XLAT_64", 0},           // IPv6 from the NAT64 -> IPv4 to the stack
	{"translated_out", "C_XLAT_46", 1},          // IPv4 leaving clat0 -> IPv6 out of the uplink
	{"icmp_error_not_ours", "C_NO_SESSION", 3},  // an ICMP error quoting a packet the CLAT did not translate
	{"to_stack", "C_TO_STACK", 8},               // to the CLAT's address, not from the NAT64 prefix: left to the kernel
	{"malformed", "C_MALFORMED", 9},             // truncated or inconsistent headers
	{"source_not_clat", "C_SRC_NOT_LAN", 10},    // IPv4 leaving clat0 without the CLAT's address (not through the NAT44)
	{"unsupported", "C_UNSUPPORTED", 12},        // RFC 7915 does not translate it (protocol, ICMP type, fragmented ICMP)
	{"icmp_error_translated", "C_ICMP_ERR", 16}, // ICMP errors translated with their quoted packet
	{"no_route", "C_NO_ROUTE", 17},              // no route to the NAT64 prefix, or the CLAT is off
	{"too_big", "C_NEEDS_FRAG", 18},             // translated, bigger than the uplink's MTU
	{"mss_clamped", "C_MSS_CLAMPED", 20},        // TCP SYNs whose MSS option was lowered
}

// CounterNames are the names Stats.Counters uses, in a fixed order.
func CounterNames() []string {
	out := make([]string, len(counters))
	for i, c := range counters {
		out[i] = c.name
	}
	return out
}

var counterIndex = func() map[string]uint32 {
	m := map[string]uint32{}
	for _, c := range counters {
		m[c.name] = c.index
	}
	return m
}()

// Stats is a snapshot for the dashboard and /metrics.
type Stats struct {
	// Running: a plan is applied and the programs are attached.
	Running bool
	// Address and Pref64 are what it translates between, when running.
	Address netip.Addr
	Pref64  netip.Prefix
	// Counters are the program's outcome counters (CounterNames).
	Counters map[string]uint64
	// Errors counts plans that could not be applied.
	Errors int
}
