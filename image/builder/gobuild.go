package builder

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// initImportPath is where the generated init lives. The directory never
// exists on disk: `go build -overlay` supplies main.go, so that the init is
// compiled inside the main module with go.mod's gokrazy version and no file
// is ever left in the source tree.
const initImportDir = "image/internal/gokrazy-init"

// buildTags are the tags gokrazy programs are built with: netgo and
// osusergo keep the binaries free of cgo, so they run on a root file system
// without a C library.
var buildTags = []string{"gokrazy", "netgo", "osusergo"}

// program is one Go main package to compile.
type program struct {
	ImportPath string
	Tags       []string
	Flags      []string
}

// compiler runs `go build` for one GOARCH.
type compiler struct {
	goTool    string
	moduleDir string // the main module (holds go.mod)
	goarch    string
	logf      func(format string, args ...any)
}

// env is the environment every compile runs in: static, for Linux on the
// board's architecture.
func (c compiler) env() []string {
	return append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+c.goarch)
}

// baseArgs are the reproducibility flags: -trimpath removes the build
// machine's paths, -buildvcs=false keeps the work tree's dirty state out of
// the binary (the image must depend on the sources only), and -s -w drop the
// symbol table and DWARF (panics still print stack traces from pclntab).
func (c compiler) baseArgs(outDir string, tags, flags []string) []string {
	args := []string{"build", "-o", outDir + string(filepath.Separator),
		"-trimpath", "-buildvcs=false",
		"-tags", strings.Join(append(slices.Clone(buildTags), tags...), ","),
		"-ldflags=-s -w"}
	return append(args, flags...)
}

// build compiles the init (from initSrc) and the programs into outDir. The
// binaries are named after the last element of their import path; the init
// is named "init".
func (c compiler) build(ctx context.Context, outDir string, initSrc []byte, progs []program) error {
	tmp, err := os.MkdirTemp("", "gizmo-init-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	mainGo := filepath.Join(tmp, "main.go")
	if err := os.WriteFile(mainGo, initSrc, 0o644); err != nil {
		return err
	}
	overlay, err := json.Marshal(map[string]map[string]string{
		"Replace": {filepath.Join(c.moduleDir, filepath.FromSlash(initImportDir), "main.go"): mainGo},
	})
	if err != nil {
		return err
	}
	overlayFile := filepath.Join(tmp, "overlay.json")
	if err := os.WriteFile(overlayFile, overlay, 0o644); err != nil {
		return err
	}

	// Programs without their own tags or flags share one `go build`, which
	// compiles them in parallel and links each once.
	shared := []string{"./" + initImportDir}
	var own []program
	for _, p := range progs {
		if len(p.Tags) == 0 && len(p.Flags) == 0 {
			shared = append(shared, p.ImportPath)
		} else {
			own = append(own, p)
		}
	}
	args := append(c.baseArgs(outDir, nil, nil), "-overlay", overlayFile)
	if err := c.run(ctx, append(args, shared...)); err != nil {
		return err
	}
	for _, p := range own {
		if err := c.run(ctx, append(c.baseArgs(outDir, p.Tags, p.Flags), p.ImportPath)); err != nil {
			return err
		}
	}
	return os.Rename(filepath.Join(outDir, path.Base(initImportDir)), filepath.Join(outDir, "init"))
}

func (c compiler) run(ctx context.Context, args []string) error {
	c.logf("go %s", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, c.goTool, args...)
	cmd.Dir = c.moduleDir
	cmd.Env = c.env()
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("compiling for %s: %s", c.goarch, msg)
	}
	return nil
}

// binaryName is the file `go build -o dir/` writes for a main package: the
// last path element, skipping a major-version suffix like /v2.
func binaryName(importPath string) string {
	base := path.Base(importPath)
	if len(base) > 1 && base[0] == 'v' && strings.Trim(base[1:], "0123456789") == "" && path.Dir(importPath) != "." {
		return path.Base(path.Dir(importPath))
	}
	return base
}
