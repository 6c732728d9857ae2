package builder

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
)

// moduleDir returns the directory of a module at the version the main
// module's go.mod requires, downloading it into the module cache if needed.
// The kernel, firmware and EEPROM files come from these directories, so that
// go.mod pins them like any other dependency.
func moduleDir(ctx context.Context, goTool, mainModuleDir, module string) (string, error) {
	cmd := exec.CommandContext(ctx, goTool, "mod", "download", "-json", module)
	cmd.Dir = mainModuleDir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var info struct {
		Path, Version, Dir, Error string
	}
	if err := json.Unmarshal(stdout.Bytes(), &info); err != nil || runErr != nil || info.Error != "" || info.Dir == "" {
		msg := strings.TrimSpace(info.Error)
		if msg == "" {
			msg = strings.TrimSpace(stderr.String())
		}
		if msg == "" && runErr != nil {
			msg = runErr.Error()
		}
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		return "", fmt.Errorf("module %s is not available (is it required in go.mod?): %s", module, msg)
	}
	return info.Dir, nil
}
