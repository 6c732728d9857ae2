package main

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"codeberg.org/monostack/gizmo/web"
	"codeberg.org/monostack/gizmo/web/logring"
)

// imageBoardFile names the board an image was built for, and
// imageBuiltFile when, in RFC 3339 (image/builder).
const (
	imageBoardFile = "/etc/gizmo/board.txt"
	imageBuiltFile = "/etc/gizmo/built.txt"
)

// process is what outlives one run of the daemon in the process (a roles
// change starts a new run): when it started and its recent log, which
// the dashboard's log page shows.
type process struct {
	started time.Time
	log     *logring.Ring
}

// firmwareOf describes a build from its build info (nil when the binary
// has none), the image's board and build time, and the executable's hash.
func firmwareOf(bi *debug.BuildInfo, board, built, binarySHA256 string) web.Firmware {
	f := web.Firmware{Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH,
		Board: strings.TrimSpace(board), BinarySHA256: binarySHA256}
	f.Built, _ = time.Parse(time.RFC3339, strings.TrimSpace(built))
	if bi == nil {
		return f
	}
	f.Version, f.Go = bi.Main.Version, bi.GoVersion
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			f.Revision = s.Value
		case "vcs.time":
			f.RevisionTime, _ = time.Parse(time.RFC3339, s.Value)
		case "vcs.modified":
			f.Modified = s.Value == "true"
		}
	}
	return f
}

// readFirmware describes the running build. An image is built with
// -buildvcs=false (it must depend on the sources only), so there the
// executable's SHA-256 names the build: the image builds reproducibly.
func readFirmware() web.Firmware {
	bi, _ := debug.ReadBuildInfo()
	board, _ := os.ReadFile(imageBoardFile)
	built, _ := os.ReadFile(imageBuiltFile)
	return firmwareOf(bi, string(board), string(built), executableSHA256())
}

func executableSHA256() string {
	path, err := os.Executable()
	if err != nil {
		return ""
	}
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}
