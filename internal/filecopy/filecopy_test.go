package filecopy

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestCopy(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	content := bytes.Repeat([]byte("gizmo\x00"), 100_000) // larger than one read
	if err := os.WriteFile(src, content, 0o600); err != nil {
		t.Fatal(err)
	}
	old := syscall.Umask(0)
	defer syscall.Umask(old)

	t.Run("new file gets perm", func(t *testing.T) {
		dst := filepath.Join(dir, "new")
		if err := Copy(dst, src, 0o755); err != nil {
			t.Fatal(err)
		}
		checkFile(t, dst, content, 0o755)
	})
	t.Run("existing file is truncated and keeps its mode", func(t *testing.T) {
		dst := filepath.Join(dir, "existing")
		if err := os.WriteFile(dst, bytes.Repeat([]byte("x"), len(content)+10), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := Copy(dst, src, 0o755); err != nil {
			t.Fatal(err)
		}
		checkFile(t, dst, content, 0o640)
	})
	t.Run("missing source leaves no destination", func(t *testing.T) {
		dst := filepath.Join(dir, "never")
		err := Copy(dst, filepath.Join(dir, "missing"), 0o644)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("err = %v, want fs.ErrNotExist", err)
		}
		if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("destination exists after a failed copy: %v", err)
		}
	})
	t.Run("a directory as source is an error", func(t *testing.T) {
		if err := Copy(filepath.Join(dir, "fromdir"), dir, 0o644); err == nil {
			t.Error("copying a directory succeeded")
		}
	})
}

func checkFile(t *testing.T, path string, want []byte, perm fs.FileMode) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: %d bytes, want %d identical bytes", path, len(got), len(want))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != perm {
		t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), perm)
	}
}
