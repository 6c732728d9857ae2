package netlab

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/lab/deps"
)

// Up checks the lab's Debian packages before it builds anything or waits
// for the lab lock: with radvd missing and installing disabled it returns
// at once, naming the package. (lab/deps_test.go checks with the real
// `lab up` that no namespace appears.)
func TestUpStopsWhenAPackageIsMissing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (Up checks for it first)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := Up(ctx, Options{
		NoInstall: true,
		HaveTool:  func(use string) bool { return use != "radvd" },
		// Where a lab that got past the check would build: nowhere.
		ModuleRoot: t.TempDir(),
		RunDir:     t.TempDir(),
	})
	if err == nil {
		l.Down()
		t.Fatal("Up succeeded with radvd missing")
	}
	var missing *deps.MissingError
	if !errors.As(err, &missing) || !slices.Equal(missing.Packages, []string{"radvd"}) {
		t.Fatalf("Up: %v; want a deps.MissingError naming radvd", err)
	}
}
