package state

// Settings are everything the household's owner set: each host's policy
// (name, reservation, exposed ports, switches) and the inbound rules. A
// backup holds them, and a restore replaces them as a whole. What the
// gizmo learned or generated itself (leases, the ULA, the DUID) is not
// part of them: a backup restored on another gizmo must not clone it.
type Settings struct {
	// Hosts are the policies by MAC address, of the hosts seen in this run
	// and the remembered ones.
	Hosts map[string]HostPolicy
	// InboundRules are the token and subnet rules, in order.
	InboundRules []InboundRule
}
