// Package bpftest holds what the tests of the services' tc programs share
// when they run them on packets of their own with BPF_PROG_TEST_RUN: the
// verdicts the programs return and the Ethernet frame around a test
// packet.
package bpftest

import "net"

// Verdicts of tc programs as BPF_PROG_TEST_RUN reports them (a uint32).
const (
	ActOK       = 0 // TC_ACT_OK: to the stack
	ActShot     = 2 // TC_ACT_SHOT: dropped
	ActRedirect = 7 // TC_ACT_REDIRECT: bpf_redirect's target
	// ActNext is TC_ACT_UNSPEC (-1), TCX_NEXT: not the program's, the
	// next program on the hook runs.
	ActNext = 1<<32 - 1
)

// Frame is the Ethernet frame from src to dst around the IP packet l3,
// with the EtherType of its IP version.
func Frame(dst, src net.HardwareAddr, l3 []byte) []byte {
	etype := []byte{0x08, 0x00}
	if len(l3) > 0 && l3[0]>>4 == 6 {
		etype = []byte{0x86, 0xdd}
	}
	f := make([]byte, 0, 14+len(l3))
	f = append(append(append(f, dst...), src...), etype...)
	return append(f, l3...)
}
