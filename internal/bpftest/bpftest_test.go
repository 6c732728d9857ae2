package bpftest

import (
	"bytes"
	"net"
	"testing"
)

// The EtherType follows the packet's IP version (RFC 894 for IPv4, RFC
// 2464 for IPv6), after the destination and the source.
func TestFrame(t *testing.T) {
	dst, src := net.HardwareAddr{2, 0, 0, 0, 0, 1}, net.HardwareAddr{2, 0, 0, 0, 0, 2}
	for _, c := range []struct {
		name  string
		l3    []byte
		etype []byte
	}{
		{"RFC 894: IPv4", []byte{0x45, 0, 0, 20}, []byte{0x08, 0x00}},
		{"RFC 2464: IPv6", []byte{0x60, 0, 0, 0}, []byte{0x86, 0xdd}},
	} {
		want := append(append(append(append([]byte{}, dst...), src...), c.etype...), c.l3...)
		if got := Frame(dst, src, c.l3); !bytes.Equal(got, want) {
			t.Errorf("%s: frame % x, want % x", c.name, got, want)
		}
	}
}
