package netlab

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeLab runs the supervisor without namespaces: the "gizmo" is a shell
// script named gizmo that records its arguments and sleeps.
func fakeLab(t *testing.T) (*Lab, *supervisor) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "gizmo")
	script := "#!/bin/sh\necho \"started $*\"\nexec sleep 600\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	l := &Lab{
		opts:   Options{GizmoBinary: bin},
		logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		runDir: dir,
		procs:  map[string]*process{},
	}
	s := newSupervisor(l)
	s.ns = ""
	l.gizmo = s
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.shutdown(); err != nil {
			t.Error(err)
		}
	})
	return l, s
}

func TestSupervisorRestartsAfterUnrequestedExit(t *testing.T) {
	l, _ := fakeLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	first := l.GizmoPID()
	if first == 0 {
		t.Fatal("gizmo not running after start")
	}
	// Kill only after the first instance has logged, so both runs show up.
	waitLogStarts(ctx, t, l, 1)
	if err := l.GizmoKill(); err != nil {
		t.Fatal(err)
	}
	// gokrazy semantics: an exit nobody asked for is followed by a restart.
	if err := l.WaitGizmoStarts(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if pid := l.GizmoPID(); pid == first || pid == 0 {
		t.Errorf("pid after restart = %d, first was %d", pid, first)
	}
	starts, crashes := l.GizmoStarts()
	if starts != 2 || crashes != 1 {
		t.Errorf("GizmoStarts = %d, %d; want 2, 1", starts, crashes)
	}
	log := waitLogStarts(ctx, t, l, 2)
	if !strings.Contains(log, "-state-dir "+l.GizmoStateDir()+" -wan uplink0 -lan lan0 -pref64 2001:db8:64::/96 -lan-ipv4 203.0.113.129/25 -listen-web [::]:80") {
		t.Errorf("gizmo flags not as in the brief:\n%s", log)
	}
}

func waitLogStarts(ctx context.Context, t *testing.T, l *Lab, n int) string {
	t.Helper()
	var log []byte
	err := WaitFor(ctx, fmt.Sprintf("%d starts in the gizmo log", n), func(context.Context) (bool, error) {
		var err error
		log, err = l.GizmoLog()
		return strings.Count(string(log), "started ") == n, err
	})
	if err != nil {
		t.Fatalf("%v:\n%s", err, log)
	}
	return string(log)
}

func TestSupervisorKeepsRequestedStop(t *testing.T) {
	l, s := fakeLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := l.GizmoStop(); err != nil {
		t.Fatal(err)
	}
	if pid := l.GizmoPID(); pid != 0 {
		t.Fatalf("pid %d after stop", pid)
	}
	// A requested stop is not a crash: no restart is pending. Wait past
	// the restart delay by asking the loop to go round once more.
	s.poke()
	time.Sleep(restartDelay + 200*time.Millisecond)
	if pid := l.GizmoPID(); pid != 0 {
		t.Fatalf("stopped gizmo came back as pid %d", pid)
	}
	if err := l.GizmoStart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.GizmoRestart(ctx); err != nil {
		t.Fatal(err)
	}
	starts, crashes := l.GizmoStarts()
	if starts != 3 || crashes != 0 {
		t.Errorf("GizmoStarts = %d, %d; want 3, 0", starts, crashes)
	}
}
