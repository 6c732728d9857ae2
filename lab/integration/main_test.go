// Package integration holds the full-product tests that run in the lab
// (lab/README.md). TestMain brings one lab up for the whole package,
// with the gizmo, and takes it down at the end; tests get it from Lab(t).
// Area tests live beside this file as <area>_test.go.
package integration

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/lab/netlab"
)

// shared is the package's lab; nil without root.
var shared *netlab.Lab

// sharedHasGizmo is false when the lab runs with netlab.Options.NoGizmo.
var sharedHasGizmo bool

func TestMain(m *testing.M) {
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "lab integration tests need root: skipping")
		os.Exit(m.Run())
	}
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	noGizmo, why := wantNoGizmo()
	if noGizmo {
		fmt.Fprintf(os.Stderr, "lab integration: running WITHOUT the gizmo: %s\n", why)
	}
	// Other packages' lab tests may hold the machine-wide lab lock for a
	// while; wait for them.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	l, err := netlab.Up(ctx, netlab.Options{NoGizmo: noGizmo, Logger: logger})
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "lab integration: %v\n", err)
		os.Exit(1)
	}
	shared, sharedHasGizmo = l, !noGizmo

	code := m.Run()

	// Down leaves nothing behind (namespaces, processes,
	// files); Down checks that before it hands the lab lock on.
	if err := l.Down(); err != nil {
		fmt.Fprintf(os.Stderr, "lab integration: down: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

// wantNoGizmo: GIZMO_LAB_NOGIZMO=1 asks for the lab without the daemon;
// so does a tree in which ./gizmo has no main package yet.
func wantNoGizmo() (bool, string) {
	if os.Getenv("GIZMO_LAB_NOGIZMO") != "" {
		return true, "GIZMO_LAB_NOGIZMO is set"
	}
	files, _ := filepath.Glob("../../gizmo/*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err == nil && (strings.Contains(string(b), "\npackage main\n") || strings.HasPrefix(string(b), "package main\n")) {
			return false, ""
		}
	}
	return true, "./gizmo has no main package yet"
}

// Lab returns the shared lab, or skips the test when not running as root.
func Lab(t testing.TB) *netlab.Lab {
	t.Helper()
	if shared == nil {
		t.Skip("needs root (the lab uses network namespaces)")
	}
	return shared
}

// LabWithGizmo is Lab for tests that need the gizmo daemon running.
func LabWithGizmo(t testing.TB) *netlab.Lab {
	t.Helper()
	l := Lab(t)
	if !sharedHasGizmo {
		t.Skip("the lab runs without the gizmo (GIZMO_LAB_NOGIZMO, or no ./gizmo main package yet)")
	}
	return l
}

// LabWithoutGizmo is Lab for tests that play the gizmo's part themselves
// (they may use gz-gizmo's interfaces freely).
func LabWithoutGizmo(t testing.TB) *netlab.Lab {
	t.Helper()
	l := Lab(t)
	if sharedHasGizmo {
		t.Skip("the gizmo runs in this lab; set GIZMO_LAB_NOGIZMO=1 for topology-only tests")
	}
	return l
}

// testContext is a context for one test, cancelled at its end.
func testContext(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
