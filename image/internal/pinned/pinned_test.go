package pinned

import (
	"go/parser"
	"go/token"
	"strconv"
	"testing"

	"codeberg.org/monostack/gizmo/hardware"
)

// imports are the import paths of pinned.go.
func imports(t *testing.T) map[string]bool {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "pinned.go", nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, is := range f.Imports {
		p, err := strconv.Unquote(is.Path.Value)
		if err != nil {
			t.Fatal(err)
		}
		m[p] = true
	}
	return m
}

// A board whose kernel, firmware or EEPROM module is not pinned would build
// until the next `go mod tidy` and then fail with "module … is not
// available".
func TestEveryBoardModuleIsPinned(t *testing.T) {
	pinned := imports(t)
	for _, b := range hardware.All() {
		for _, m := range []string{b.KernelModule, b.FirmwareModule, b.EEPROMModule} {
			if m != "" && !pinned[m] {
				t.Errorf("board %s needs module %s, which pinned.go does not import", b.Name, m)
			}
		}
	}
}
