// Package errtest checks the errors the image tool shows a person at a
// terminal: each names its problem, on one line.
package errtest

import (
	"strings"
	"testing"
)

// OneLine fails t unless err is an error that mentions want and spans a
// single line.
func OneLine(t testing.TB, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not mention %q", err, want)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q spans lines", err)
	}
}
