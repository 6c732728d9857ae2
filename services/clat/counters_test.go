package clat

import (
	"errors"
	"io/fs"
	"os"
	"regexp"
	"testing"

	"codeberg.org/monostack/gizmo/internal/targetkernel"
)

// The program counts into the NAT64's counter layout (enum counter in
// services/nat64/bpf/nat64.h, which it includes): each name here must sit
// at its C name's index there.
func TestCounterIndexesMatchTheHeader(t *testing.T) {
	b, err := os.ReadFile("../nat64/bpf/nat64.h")
	if errors.Is(err, fs.ErrNotExist) && targetkernel.IsInit() {
		t.Skip("the source tree is not in the VM; the build machine checks the header")
	}
	if err != nil {
		t.Fatal(err)
	}
	enum := regexp.MustCompile(`(?s)enum counter \{(.*?)\};`).FindSubmatch(b)
	if enum == nil {
		t.Fatal("no enum counter in nat64.h")
	}
	index := map[string]uint32{}
	for i, m := range regexp.MustCompile(`(?m)^\s*(C_[A-Z0-9_]+)`).FindAllSubmatch(enum[1], -1) {
		index[string(m[1])] = uint32(i)
	}
	if index["C_XLAT_64"] != 0 {
		t.Fatalf("enum counter does not start with C_XLAT_64 = 0: %v", index)
	}
	for _, c := range counters {
		i, ok := index[c.enum]
		if !ok {
			t.Errorf("%s: %s is not in enum counter", c.name, c.enum)
			continue
		}
		if i != c.index {
			t.Errorf("%s: %s is at %d in nat64.h, not %d", c.name, c.enum, i, c.index)
		}
	}
}
