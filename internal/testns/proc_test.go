package testns

import (
	"errors"
	"os/exec"
	"testing"
)

func TestWatchCollectsOutputAndExit(t *testing.T) {
	p := Watch(t, exec.Command("sh", "-c", "echo out; echo err >&2; exit 3"))
	<-p.Exited()
	if got := p.Output(); got != "out\nerr\n" {
		t.Errorf("output %q, want both streams", got)
	}
	var ee *exec.ExitError
	if err := p.Err(); !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("Err = %v, want exit status 3", err)
	}
}

func TestWatchKillsAtTheEndOfTheTest(t *testing.T) {
	var p *Proc
	t.Run("running", func(t *testing.T) {
		p = Watch(t, exec.Command("sleep", "60"))
	})
	select {
	case <-p.Exited():
	default:
		t.Fatal("the command still runs after its test ended")
	}
}
