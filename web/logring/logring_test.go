package logring

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestRingKeepsTheNewestLines(t *testing.T) {
	r := New(3, 64)
	log := slog.New(slog.NewTextHandler(r, nil))
	for i := range 5 {
		log.Info("event", "n", i)
	}
	got := r.Lines()
	if len(got) != 3 {
		t.Fatalf("%d lines, want 3: %q", len(got), got)
	}
	for i, l := range got {
		if !strings.Contains(l, fmt.Sprintf("n=%d", i+2)) || !strings.HasPrefix(l, "time=") || strings.HasSuffix(l, "\n") {
			t.Errorf("line %d = %q, want the record n=%d without its newline", i, l, i+2)
		}
	}
	if held, dropped, truncated := r.Stats(); held != 3 || dropped != 2 || truncated != 0 {
		t.Errorf("stats %d held, %d dropped, %d truncated; want 3, 2, 0", held, dropped, truncated)
	}
}

func TestRingBoundsLineLength(t *testing.T) {
	r := New(10, 16)
	r.Write([]byte(strings.Repeat("é", 20) + "\n" + "short\n\n"))
	got := r.Lines()
	if len(got) != 2 || got[1] != "short" {
		t.Fatalf("lines %q", got)
	}
	if l := strings.TrimSuffix(got[0], " …"); len(l) > 16 || !utf8.ValidString(l) || l == got[0] {
		t.Errorf("long line kept as %q, want at most 16 bytes of whole characters, marked as cut", got[0])
	}
	if _, _, truncated := r.Stats(); truncated != 1 {
		t.Errorf("truncated = %d, want 1", truncated)
	}
}

func FuzzRingWrite(f *testing.F) {
	f.Add([]byte("time=2026-11-26T12:00:00Z level=INFO msg=x\n"), 8)
	f.Fuzz(func(t *testing.T, p []byte, max int) {
		max = 4 + max%64
		if max < 4 {
			max = 4
		}
		r := New(4, max)
		r.Write(p)
		for _, l := range r.Lines() {
			if len(strings.TrimSuffix(l, " …")) > max || strings.Contains(l, "\n") {
				t.Fatalf("line %q over %d bytes or with a newline", l, max)
			}
		}
	})
}
