package netlab

import (
	"context"
	"fmt"

	"codeberg.org/monostack/gizmo/lab/deps"
)

// ensureDeps installs the Debian packages the lab needs, or stops with one
// line naming them, before Up builds or changes anything (deps.Installer).
func ensureDeps(ctx context.Context, opts Options) error {
	in := deps.Installer{NoInstall: opts.NoInstall, Have: opts.HaveTool}
	if err := in.Ensure(ctx, deps.Lab); err != nil {
		return fmt.Errorf("netlab: %w", err)
	}
	return nil
}
