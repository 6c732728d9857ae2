// Package svclog gives a service the logger it logs with: the one the
// daemon passed in its configuration, or slog's default when it passed
// none, with the service's name on every record.
package svclog

import "log/slog"

// For is base (slog.Default() when nil) with the attribute service=name
// and the further attributes args, as slog.Logger.With takes them.
func For(base *slog.Logger, name string, args ...any) *slog.Logger {
	if base == nil {
		base = slog.Default()
	}
	return base.With(append([]any{"service", name}, args...)...)
}
