package testns

import (
	"os/exec"
	"strings"
	"testing"

	"codeberg.org/monostack/gizmo/internal/syncbuf"
)

// Proc is a command that Watch started: what it has written so far and
// how it ended.
type Proc struct {
	out    syncbuf.Buffer // exec writes it from its own goroutines
	exited chan struct{}
	err    error
}

// Watch starts cmd (a peer or a child test process, usually from Command)
// with its standard output and error collected, and kills and reaps it
// when the test ends, before the namespaces it runs in are deleted.
func Watch(t testing.TB, cmd *exec.Cmd) *Proc {
	t.Helper()
	p := &Proc{exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", strings.Join(cmd.Args, " "), err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// Output is what the command has written so far.
func (p *Proc) Output() string { return p.out.String() }

// Exited is closed when the command has ended; Err then says how.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Err is the command's exit status as cmd.Wait returned it, once Exited is
// closed.
func (p *Proc) Err() error {
	<-p.exited
	return p.err
}
