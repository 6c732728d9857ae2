// Package persist writes and reads the gizmo's durable JSON state under the
// state directory (/perm/gizmo on the appliance). Every write is atomic:
// write a temporary file in the same directory, fsync it, rename it over the
// old file and fsync the directory, so that a crash or power cut leaves
// either the old or the new version, never a torn file.
package persist

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// WriteJSON atomically replaces path with the JSON encoding of v.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("persist: encode %s: %w", path, err)
	}
	return WriteFile(path, append(b, '\n'))
}

// WriteFile atomically replaces path with data.
func WriteFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("persist: create %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("persist: %w", err)
	}
	// If anything below fails, the temporary file must not linger.
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("persist: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("persist: fsync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("persist: close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("persist: rename to %s: %w", path, err)
	}
	ok = true
	// The rename is durable only once the directory entry is on disk.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// ErrCorrupt is wrapped by ReadJSON when the file exists but does not decode.
var ErrCorrupt = errors.New("corrupt state file")

// ReadJSON decodes path into v. A missing file is not an error: found is
// false and v is untouched. A file that does not decode is renamed to
// path.corrupt-<unix time> so that the caller can start fresh without losing
// the evidence, and the returned error wraps ErrCorrupt.
func ReadJSON(path string, v any) (found bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("persist: read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		backup := fmt.Sprintf("%s.corrupt-%d", path, time.Now().Unix())
		if rerr := os.Rename(path, backup); rerr != nil {
			return false, fmt.Errorf("persist: %s: %w: %v (and could not move it aside: %v)", path, ErrCorrupt, err, rerr)
		}
		return false, fmt.Errorf("persist: %s: %w: %v (moved to %s)", path, ErrCorrupt, err, backup)
	}
	return true, nil
}
