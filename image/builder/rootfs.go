package builder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/internal/filecopy"
)

// rootEntry is one file, directory or symlink of the root file system.
type rootEntry struct {
	Mode    fs.FileMode // type bits + permissions
	Source  string      // regular file: copy from this host path ...
	Content []byte      // ... or write these bytes
	Target  string      // symlink target
}

// rootTree maps absolute paths ("/etc/hostname") to entries. Parent
// directories are implied.
type rootTree map[string]rootEntry

func (t rootTree) file(p string, mode fs.FileMode, content []byte) {
	t[p] = rootEntry{Mode: mode, Content: content}
}

func (t rootTree) copy(p string, mode fs.FileMode, src string) {
	t[p] = rootEntry{Mode: mode, Source: src}
}

func (t rootTree) dir(p string) {
	t[p] = rootEntry{Mode: fs.ModeDir | 0o755}
}

func (t rootTree) symlink(p, target string) {
	t[p] = rootEntry{Mode: fs.ModeSymlink | 0o777, Target: target}
}

// addTree copies a host directory (e.g. a kernel module's lib/modules) to
// dst, keeping the executable bit.
func (t rootTree) addTree(dst, src string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.ToSlash(filepath.Join(dst, rel))
		switch {
		case d.IsDir():
			t.dir(target)
		case d.Type().IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			mode := fs.FileMode(0o644)
			if fi.Mode()&0o111 != 0 {
				mode = 0o755
			}
			t.copy(target, mode, p)
		default:
			return fmt.Errorf("%s: unsupported file type %v", p, d.Type())
		}
		return nil
	})
}

// writeSquashfs writes the tree as a gzip-compressed squashfs to out and
// returns its size. Both kernels (kernel.rpi and kernel.amd64) have
// SQUASHFS_ZLIB; the other compressors are not enabled in both. Level 6
// instead of mksquashfs's default 9: a quarter of the CPU time for a root
// 0.6% larger (docs/performance.md).
//
// It runs Debian's mksquashfs (squashfs-tools) rather than go-diskfs's
// squashfs writer: go-diskfs lists the extended attributes of every
// workspace entry through the symlink, so the dangling symlinks a gokrazy
// root needs (/etc/resolv.conf -> /tmp/resolv.conf, /var -> /perm/var) make
// it fail, and it compresses on one core. mksquashfs sorts directory
// entries, is reproducible by default, -all-root pins the owners and
// SOURCE_DATE_EPOCH the timestamps.
func writeSquashfs(ctx context.Context, tree rootTree, out string, epoch time.Time) (int64, error) {
	bin, err := exec.LookPath("mksquashfs")
	if err != nil {
		return 0, errors.New("mksquashfs not found: install Debian's squashfs-tools package (writes the root file system)")
	}
	ws, err := os.MkdirTemp("", "gizmo-root-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(ws)
	if err := populate(ws, tree, epoch); err != nil {
		return 0, err
	}
	cmd := exec.CommandContext(ctx, bin, ws, out, "-noappend", "-quiet", "-no-progress",
		"-comp", "gzip", "-Xcompression-level", "6", "-b", "131072", "-all-root", "-no-xattrs")
	// squashfs-tools sets the mkfs time and every inode's mtime from
	// SOURCE_DATE_EPOCH (and refuses -all-time/-mkfs-time alongside it).
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(epoch.Unix(), 10))
	var msg bytes.Buffer
	cmd.Stdout, cmd.Stderr = &msg, &msg
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("mksquashfs: %v: %s", err, strings.TrimSpace(msg.String()))
	}
	fi, err := os.Stat(out)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// populate materialises the tree below dir with fixed permissions and times.
func populate(dir string, tree rootTree, epoch time.Time) error {
	paths := make([]string, 0, len(tree))
	for p := range tree {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		e := tree[p]
		host := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
			return err
		}
		switch {
		case e.Mode.IsDir():
			if err := os.MkdirAll(host, 0o755); err != nil {
				return err
			}
		case e.Mode&fs.ModeSymlink != 0:
			if err := os.Symlink(e.Target, host); err != nil {
				return err
			}
		case e.Source != "":
			if err := filecopy.Copy(host, e.Source, 0o600); err != nil {
				return err
			}
		default:
			if err := os.WriteFile(host, e.Content, 0o600); err != nil {
				return err
			}
		}
	}
	// Permissions and times last, deepest first, so that creating a child
	// does not bump its parent's mtime afterwards.
	var all []string
	if err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		all = append(all, p)
		return err
	}); err != nil {
		return err
	}
	ts := []unix.Timespec{unix.NsecToTimespec(epoch.UnixNano()), unix.NsecToTimespec(epoch.UnixNano())}
	for i := len(all) - 1; i >= 0; i-- {
		p := all[i]
		rel, _ := filepath.Rel(dir, p)
		e, ok := tree["/"+filepath.ToSlash(rel)]
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			perm := fs.FileMode(0o755) // implied parent directories
			if ok {
				perm = e.Mode.Perm()
			}
			if err := os.Chmod(p, perm); err != nil {
				return err
			}
		}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("setting times of %s: %w", p, err)
		}
	}
	return nil
}
