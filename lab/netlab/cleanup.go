package netlab

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// labNamespaces lists existing namespaces whose name starts with "gz-".
func labNamespaces() []string {
	ents, err := os.ReadDir("/run/netns")
	if err != nil {
		return nil
	}
	var ns []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "gz-") {
			ns = append(ns, e.Name())
		}
	}
	return ns
}

// nsPids lists the processes that live in network namespace ns.
func nsPids(ctx context.Context, ns string) []int {
	out, err := runCmd(ctx, "ip", "netns", "pids", ns)
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Leftovers describes what a lab left on the machine: gz-* namespaces,
// processes started by a lab, and the run directory. It is empty after Down.
func Leftovers(ctx context.Context, runDir string) []string {
	if runDir == "" {
		runDir = DefaultRunDir
	}
	var left []string
	for _, ns := range labNamespaces() {
		left = append(left, "namespace "+ns)
	}
	seen := map[int]bool{}
	pids := labProcesses()
	for _, ns := range labNamespaces() {
		pids = append(pids, nsPids(ctx, ns)...)
	}
	for _, pid := range pids {
		if !seen[pid] && alive(pid) {
			seen[pid] = true
			left = append(left, fmt.Sprintf("process %d: %s", pid, cmdline(pid)))
		}
	}
	if _, err := os.Stat(runDir); err == nil {
		left = append(left, "directory "+runDir)
	}
	return left
}

// Cleanup removes everything a crashed (or still running, but unlocked)
// lab left behind: processes, gz-* namespaces and the run directory. It
// takes the machine-wide lock first, so it never tears down a lab that a
// live process holds; it waits for that lock until ctx is done.
func Cleanup(ctx context.Context, opts Options) error {
	opts = opts.withDefaults()
	lock, err := acquireLock(ctx, opts.Logger)
	if err != nil {
		return err
	}
	defer lock.release()
	return cleanup(ctx, opts.Logger, opts.RunDir)
}

// cleanup does the work of Cleanup; the caller holds the lock.
func cleanup(ctx context.Context, logger *slog.Logger, runDir string) error {
	pids := labProcesses()
	for _, ns := range labNamespaces() {
		pids = append(pids, nsPids(ctx, ns)...)
	}
	if len(pids) > 0 {
		logger.Info("stopping leftover lab processes", "count", len(pids))
		killAll(logger, pids, 3*time.Second)
	}
	var errs []string
	for _, ns := range labNamespaces() {
		if out, err := runCmd(ctx, "ip", "netns", "del", ns); err != nil {
			errs = append(errs, fmt.Sprintf("ip netns del %s: %v: %s", ns, err, strings.TrimSpace(string(out))))
			continue
		}
		logger.Debug("deleted namespace", "ns", ns)
	}
	if runDir != "" && filepath.IsAbs(runDir) && runDir != "/" {
		if err := os.RemoveAll(runDir); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("netlab: cleanup: %s", strings.Join(errs, "; "))
	}
	return nil
}
