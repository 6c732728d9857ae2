package persist

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

type sample struct {
	Name  string
	Count int
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "s.json")
	if err := WriteJSON(path, sample{"a", 3}); err != nil {
		t.Fatal(err)
	}
	var got sample
	found, err := ReadJSON(path, &got)
	if err != nil || !found || got != (sample{"a", 3}) {
		t.Fatalf("ReadJSON = %v, %v, %+v", found, err, got)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestMissingFileIsNotAnError(t *testing.T) {
	var got sample
	found, err := ReadJSON(filepath.Join(t.TempDir(), "none.json"), &got)
	if found || err != nil {
		t.Fatalf("ReadJSON = %v, %v", found, err)
	}
}

func TestCorruptFileIsMovedAside(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.json")
	os.WriteFile(path, []byte(`{"Name": "trunc`), 0o644)
	var got sample
	found, err := ReadJSON(path, &got)
	if found || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ReadJSON = %v, %v; want ErrCorrupt", found, err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("corrupt file still in place")
	}
	backups, _ := filepath.Glob(path + ".corrupt-*")
	if len(backups) != 1 {
		t.Errorf("backups = %v, want one", backups)
	}
}
