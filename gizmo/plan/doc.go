// Package plan holds the pure functions that turn the daemon's state into
// what each service should do: the addresses on the LAN, the RA to send,
// the firewall ruleset, the DNS64 policy, the NAT64's pool and prefixes.
// They read a *state.State and the current time and touch nothing else, so
// most of the gizmo's protocol rules are tested here with table tests.
//
// NetworkOf is the one view of which prefixes the LAN has; every plan takes
// its prefixes from it. All makes every service's plan of one moment.
package plan
