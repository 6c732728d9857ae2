// Package depstest lets a test install the Debian packages it needs, or
// skip naming them when it cannot (see package deps).
package depstest

import (
	"context"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/lab/deps"
)

// Require installs the missing packages of the groups, as `lab up` does,
// and skips the test with a message naming them when it cannot (not root,
// no apt-get, GIZMO_LAB_NO_INSTALL, or apt-get failed).
func Require(t testing.TB, groups ...deps.Group) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	// Every error Ensure returns is a *deps.MissingError: nothing was
	// installed or changed, and the message names the packages.
	if err := (deps.Installer{Who: t.Name()}).Ensure(ctx, groups...); err != nil {
		t.Skip(err)
	}
}
