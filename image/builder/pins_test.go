package builder

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"codeberg.org/monostack/gizmo/image/instance"
)

// importsOf returns the import paths of one Go source.
func importsOf(t *testing.T, name string, src any) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, is := range f.Imports {
		p, err := strconv.Unquote(is.Path.Value)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// The generated init is compiled through an overlay, so `go mod tidy` never
// sees its imports: every module it imports must be pinned by
// image/internal/pinned, or tidy drops it and the next build fails.
func TestInitImportsArePinned(t *testing.T) {
	// With the signed update API, which adds the most imports.
	opts := Options{Config: instance.Config{Hostname: "gizmo", Update: &instance.Update{HTTPPort: "8080"}}, Password: "pw", UpdateKey: testUpdateKey}
	src, err := initSource("2026-01-01T00:00:00Z", []service{{Path: "/user/gizmo"}}, updateAPIOf(opts))
	if err != nil {
		t.Fatal(err)
	}
	pinned := map[string]bool{}
	for _, p := range importsOf(t, filepath.Join(moduleRoot(t), "image", "internal", "pinned", "pinned.go"), nil) {
		pinned[p] = true
	}
	for _, p := range importsOf(t, "init.go", src) {
		if first, _, _ := strings.Cut(p, "/"); !strings.Contains(first, ".") {
			continue // standard library
		}
		if strings.HasPrefix(p, "codeberg.org/monostack/gizmo/") {
			continue // this module's own packages: tidy sees what they import
		}
		if !pinned[p] {
			t.Errorf("the generated init imports %s, which image/internal/pinned does not", p)
		}
	}
}
