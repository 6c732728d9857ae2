// Package oui names the vendor of a MAC address from the IEEE MA-L registry,
// which ships inside the binary (oui.txt.gz, made by gen.go from Debian's
// ieee-data package).
package oui

//go:generate go run gen.go

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
)

//go:embed oui.txt.gz
var registry []byte

type entry struct {
	prefix uint32
	name   string
}

// Table looks vendors up. The zero value is ready to use; the registry is
// decompressed on first use.
type Table struct {
	once    sync.Once
	entries []entry
}

func (t *Table) load() {
	zr, err := gzip.NewReader(bytes.NewReader(registry))
	if err != nil {
		return
	}
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		hex, name, ok := strings.Cut(sc.Text(), "\t")
		if !ok {
			continue
		}
		v, err := strconv.ParseUint(hex, 16, 32)
		if err != nil {
			continue
		}
		t.entries = append(t.entries, entry{uint32(v), name})
	}
	// gen.go writes sorted lines; sort anyway so a hand-edited file works.
	sort.Slice(t.entries, func(i, j int) bool { return t.entries[i].prefix < t.entries[j].prefix })
}

// Vendor returns the organisation that owns mac's OUI, or "" when it is
// unknown or the address is locally administered (randomised MACs of phones
// and laptops carry no vendor).
func (t *Table) Vendor(mac net.HardwareAddr) string {
	if len(mac) < 3 || mac[0]&0x02 != 0 {
		return ""
	}
	t.once.Do(t.load)
	key := uint32(mac[0])<<16 | uint32(mac[1])<<8 | uint32(mac[2])
	i := sort.Search(len(t.entries), func(i int) bool { return t.entries[i].prefix >= key })
	if i < len(t.entries) && t.entries[i].prefix == key {
		return t.entries[i].name
	}
	return ""
}
