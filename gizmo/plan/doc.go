// Package plan holds the pure functions that turn the daemon's state into
// what each service should do: the RA to send, the addresses on the LAN, the
// firewall ruleset, the DNS64 policy. They read a *state.State and the
// current time and touch nothing else, so most of the gizmo's protocol rules
// are tested here with table tests.
package plan
