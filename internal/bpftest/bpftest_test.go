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

// RFC 9293 §3.2: options are a kind byte, then for all but kinds 0 (end)
// and 1 (no-operation) a length byte covering the whole option.
func TestMSS(t *testing.T) {
	for _, c := range []struct {
		name string
		opts []byte
		want uint16
		ok   bool
	}{
		{"MSS first", []byte{2, 4, 0x05, 0xb4}, 1460, true},
		{"after no-operations", []byte{1, 1, 1, 2, 4, 0x05, 0x78, 0, 0, 0, 0, 0}, 1400, true},
		{"after a window scale", []byte{3, 3, 7, 2, 4, 0x05, 0xb4, 0}, 1460, true},
		{"none", []byte{1, 1, 3, 3, 7, 0, 0, 0}, 0, false},
		{"end of options first", []byte{0, 2, 4, 0x05, 0xb4, 0, 0, 0}, 0, false},
		{"a zero length stops the walk", []byte{3, 0, 2, 4, 0x05, 0xb4, 0, 0}, 0, false},
	} {
		tcp := make([]byte, 20, 20+len(c.opts))
		tcp[12] = byte(5+len(c.opts)/4) << 4
		tcp = append(tcp, c.opts...)
		if got, ok := MSS(tcp); got != c.want || ok != c.ok {
			t.Errorf("%s: MSS %d, %v; want %d, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}
