package wan

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

func TestApplySysctls(t *testing.T) {
	root := t.TempDir()
	settings := routerSysctls("uplink0")
	for _, s := range settings {
		if s.optional {
			continue // the kernel lacks it: logged, not fatal
		}
		p := filepath.Join(root, s.path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("0\n"), 0o644)
	}
	if err := applySysctls(root, settings, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"net/ipv6/conf/all/forwarding":     "1",
		"net/ipv6/conf/uplink0/forwarding": "1",
		// A forwarding router still takes the upstream's RA only with 2.
		"net/ipv6/conf/uplink0/accept_ra":        "2",
		"net/ipv6/conf/uplink0/autoconf":         "1",
		"net/ipv6/conf/uplink0/accept_ra_defrtr": "1",
		"net/ipv4/ip_forward":                    "1",
	}
	for k, v := range want {
		b, err := os.ReadFile(filepath.Join(root, k))
		if err != nil || string(b) != v {
			t.Errorf("%s = %q (%v), want %q", k, b, err, v)
		}
	}
	// A missing mandatory setting is an error.
	os.Remove(filepath.Join(root, "net/ipv4/ip_forward"))
	if err := applySysctls(root, settings, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil {
		t.Error("missing ip_forward not reported")
	}
}
