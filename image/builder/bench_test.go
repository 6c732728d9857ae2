package builder

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// BenchmarkBuild measures a warm image build of the repository's
// config.json with the real daemon, per board, next to its reference: the
// `go build` of the same programs alone (the part no image builder can
// avoid). The first iteration warms the build cache and is not timed.
//
//	go test -run '^$' -bench Build -benchtime 3x ./image/builder
func BenchmarkBuild(b *testing.B) {
	for _, board := range []string{"qemu-amd64", "rpi4"} {
		opts := testOptions(b, board, realGizmo)
		out := filepath.Join(b.TempDir(), "gizmo.img")
		if _, err := Build(context.Background(), opts, out); err != nil {
			b.Fatalf("warm-up build: %v", err)
		}
		b.Run(board+"/go-build", func(b *testing.B) {
			goTool, _ := exec.LookPath("go")
			services, progs := servicesOf(opts.Config)
			src, err := initSource(time.Unix(0, 0).UTC().Format(time.RFC3339), services, updateAPIOf(opts))
			if err != nil {
				b.Fatal(err)
			}
			c := compiler{goTool: goTool, moduleDir: opts.ModuleDir, goarch: opts.Board.GOARCH, logf: func(string, ...any) {}}
			for b.Loop() {
				dir := b.TempDir()
				if err := c.build(context.Background(), dir, src, progs); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(board+"/image", func(b *testing.B) {
			var res Result
			for b.Loop() {
				var err error
				if res, err = Build(context.Background(), opts, out); err != nil {
					b.Fatal(err)
				}
			}
			fi, err := os.Stat(out)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(res.RootSize)/(1<<20), "root-MiB")
			b.ReportMetric(float64(fi.Size())/(1<<20), "image-MiB")
			b.ReportMetric(float64(fi.Sys().(*syscall.Stat_t).Blocks*512)/(1<<20), "allocated-MiB")
		})
	}
}
