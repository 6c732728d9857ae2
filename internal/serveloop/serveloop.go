// Package serveloop keeps a service's socket loop alive on a LAN or WAN
// interface that may be missing, not ready yet, or deleted and re-created
// (a bridge rebuilt after a role change): serve again after an error, and
// notice when the interface a socket was bound to is gone, because such a
// socket just goes quiet instead of failing.
package serveloop

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"
)

// Run calls serve until ctx is done, waiting retry between calls. An error
// is logged once when it first appears (with msg), not on every retry, so a
// missing interface does not flood the log. Run returns nil once ctx is
// done: a service stopping is not an error.
func Run(ctx context.Context, log *slog.Logger, msg string, retry time.Duration, serve func(context.Context) error) error {
	var lastErr string
	for {
		err := serve(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && err.Error() != lastErr {
			log.Warn(msg, "err", err)
			lastErr = err.Error()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(retry):
		}
	}
}

// SameInterface returns an error when the interface named like ifi is gone
// or was re-created under a new index.
func SameInterface(ifi *net.Interface) error {
	now, err := net.InterfaceByName(ifi.Name)
	if err != nil {
		return fmt.Errorf("%s: %w", ifi.Name, err)
	}
	if now.Index != ifi.Index {
		return fmt.Errorf("%s was re-created (index %d, was %d)", ifi.Name, now.Index, ifi.Index)
	}
	return nil
}

// CheckInterval is how often a serving loop checks with SameInterface that
// its interface is still there: a socket on a deleted interface just goes
// quiet instead of failing.
const CheckInterval = 5 * time.Second

// Read runs read, a loop reading from c, in a goroutine of its own. The
// error read returns with arrives on done; stop closes c, which ends read,
// and waits for it to return.
func Read(c io.Closer, read func() error) (done <-chan error, stop func()) {
	ch := make(chan error, 1)
	go func() { ch <- read() }()
	return ch, func() {
		c.Close()
		<-ch
	}
}
