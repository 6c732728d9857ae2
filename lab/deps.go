package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"codeberg.org/monostack/gizmo/lab/deps"
)

// cmdDeps installs (or with -print lists) the Debian packages of the
// groups named in args, all groups when none is: what CI (.ci/deps.sh)
// and a developer who wants everything at once run.
func cmdDeps(ctx context.Context, opts cliOptions, args []string) error {
	fs := flag.NewFlagSet("deps", flag.ContinueOnError)
	print := fs.Bool("print", false, "print the packages' names instead of installing them")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: lab [-no-install] deps [-print] [GROUP...]\n\ngroups: %s (default: all)\n", groupNames())
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	var groups []deps.Group
	for _, a := range fs.Args() {
		g, err := deps.ParseGroup(a)
		if err != nil {
			return err
		}
		groups = append(groups, g)
	}
	if *print {
		var names []string
		for _, p := range deps.Packages(groups...) {
			names = append(names, p.Name)
		}
		fmt.Println(strings.Join(names, " "))
		return nil
	}
	who := "the lab, the tests and the builds"
	if len(groups) > 0 {
		who = "the groups " + strings.Trim(fmt.Sprint(groups), "[]")
	}
	if err := (deps.Installer{Who: who, NoInstall: opts.noInstall}).Ensure(ctx, groups...); err != nil {
		return err
	}
	fmt.Printf("The %d Debian packages of %s are installed.\n", len(deps.Packages(groups...)), who)
	return nil
}

func groupNames() string {
	var names []string
	for _, g := range deps.Groups {
		names = append(names, string(g))
	}
	return strings.Join(names, ", ")
}

// ensureLabDeps is the first thing up and demo do: install what the lab
// needs, or stop with one line naming it, before anything is built.
func ensureLabDeps(ctx context.Context, opts cliOptions) error {
	return deps.Installer{NoInstall: opts.noInstall}.Ensure(ctx, deps.Lab)
}
