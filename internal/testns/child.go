package testns

import (
	"os"
	"strings"
	"testing"
)

// RunChild runs test, a test of this test binary, in a child process
// inside namespace ns, with env ("NAME=value") added to the environment,
// and fails t unless test passed there. Namespaces are per thread and a
// service runs goroutines, so code that must run wholly inside a
// namespace runs in a process started there. It returns the child's
// output.
func RunChild(t testing.TB, ns, test string, env ...string) string {
	t.Helper()
	cmd := Command(ns, os.Args[0], "-test.run=^"+test+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+test) {
		t.Fatalf("%s in %s: %v\n%s", test, ns, err, out)
	}
	return string(out)
}
