package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"codeberg.org/monostack/gizmo/gizmo/plan"
	"codeberg.org/monostack/gizmo/internal/persist"
	"codeberg.org/monostack/gizmo/web"
)

// generatedPasswordFile is where the daemon keeps a password it made up
// because gokrazy's was not there (in the lab, or on a bare Linux).
const generatedPasswordFile = "password.txt"

// imagePasswordFile is where a gizmo image keeps the appliance password.
// The image has no /etc/gokr-pw.txt, so that gokrazy's own web UI and
// update API stay on its unix socket (image/builder).
const imagePasswordFile = "/etc/gizmo/password.txt"

// appliancePassword reads gokrazy's password file, or the image's, or the
// one generated earlier, or generates and persists a new one.
func appliancePassword(cfg config) (pw string, source string, err error) {
	for _, p := range []string{cfg.PasswordFile, "/perm/gokr-pw.txt", imagePasswordFile, filepath.Join(cfg.StateDir, generatedPasswordFile)} {
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", "", fmt.Errorf("password: %w", err)
		}
		if pw := strings.TrimSpace(string(b)); pw != "" {
			return pw, p, nil
		}
	}
	var b [18]byte
	rand.Read(b[:])
	pw = base64.RawURLEncoding.EncodeToString(b[:])
	path := filepath.Join(cfg.StateDir, generatedPasswordFile)
	if err := persist.WriteFile(path, []byte(pw+"\n")); err != nil {
		return "", "", err
	}
	os.Chmod(path, 0o600)
	return pw, path, nil
}

// wireWeb runs the dashboard, and the sampler that feeds its history.
func wireWeb(d *daemon, cfg config, _, _ string) error {
	pw, source, err := appliancePassword(cfg)
	if err != nil {
		return err
	}
	d.log.Info("dashboard changes need the appliance password", "file", source)
	// The executable's hash takes a moment on a Pi: made once, ahead of
	// the first page that shows it.
	firmware := sync.OnceValue(readFirmware)
	go firmware()
	srv, err := web.New(web.Config{
		Backend:   d,
		Logger:    d.log,
		Password:  pw,
		Hostnames: []string{plan.RouterFQDN, plan.RouterName},
		TLSDir:    cfg.StateDir,
		Firmware:  firmware,
		Started:   d.proc.started,
		Log:       d.proc.log,
	})
	if err != nil {
		return err
	}
	d.loadHistory()
	d.add("history", sampler{d}, nil)
	d.add("web", srv, func(p *plan.Plans) { srv.SetListen(p.WebListen) })
	return nil
}
