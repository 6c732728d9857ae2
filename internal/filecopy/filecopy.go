// Package filecopy copies one file's bytes to a new path. The image builder
// stages kernel, firmware and program files with it, and the lab installs
// its binaries into the run directory.
package filecopy

import (
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Copy writes the contents of src to dst, in io.Copy's order (destination
// first). dst is created with perm (before the umask) or truncated if it
// exists, in which case it keeps its mode. Only the bytes are copied: not
// the mode, owner or times of src, which both callers set themselves.
func Copy(dst, src string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	return nil
}
