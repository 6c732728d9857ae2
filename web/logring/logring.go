// Package logring keeps the gizmo process's recent log lines in memory, for
// the dashboard's log page: gokrazy's own log view is on its unix socket
// only, so the owner reads the daemon's log here. It is an io.Writer for
// a slog.TextHandler (one Write per record) and holds at most a fixed
// number of lines of bounded length, whatever the daemon logs.
package logring

import (
	"bytes"
	"slices"
	"sync"
	"unicode/utf8"
)

// DefaultLines and DefaultLineBytes bound a ring to about 1 MiB: a day of
// a quiet gizmo's log, the last minutes of a noisy one.
const (
	DefaultLines     = 2000
	DefaultLineBytes = 512
)

// Ring is the last lines written, oldest first. It is safe for concurrent
// use.
type Ring struct {
	maxBytes int

	mu        sync.Mutex
	lines     []string // a circular buffer of cap(lines) once full
	next      int      // where the next line goes once full
	dropped   uint64   // lines overwritten by newer ones
	truncated uint64   // lines cut at maxBytes
}

// New returns a ring of at most lines lines, each cut at lineBytes.
func New(lines, lineBytes int) *Ring {
	return &Ring{maxBytes: lineBytes, lines: make([]string, 0, lines)}
}

// Write adds p as one or more lines (a slog handler writes one record
// ending in a newline per call).
func (r *Ring) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		line, rest, _ := bytes.Cut(p, []byte{'\n'})
		p = rest
		if len(line) == 0 {
			continue
		}
		r.add(line)
	}
	return n, nil
}

func (r *Ring) add(line []byte) {
	cut := false
	if len(line) > r.maxBytes {
		line, cut = line[:r.maxBytes], true
		// Never end in the middle of a UTF-8 sequence.
		for i := len(line) - 1; i >= 0 && i >= len(line)-utf8.UTFMax; i-- {
			if utf8.RuneStart(line[i]) {
				if !utf8.FullRune(line[i:]) {
					line = line[:i]
				}
				break
			}
		}
	}
	s := string(line)
	if cut {
		s += " …"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if cut {
		r.truncated++
	}
	if len(r.lines) < cap(r.lines) {
		r.lines = append(r.lines, s)
		return
	}
	r.lines[r.next] = s
	r.next = (r.next + 1) % len(r.lines)
	r.dropped++
}

// Lines returns a copy of the lines, oldest first.
func (r *Ring) Lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append(slices.Clone(r.lines[r.next:]), r.lines[:r.next]...)
}

// Stats are the ring's counters: lines held, overwritten by newer ones,
// and cut at the line length.
func (r *Ring) Stats() (held int, dropped, truncated uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.lines), r.dropped, r.truncated
}
