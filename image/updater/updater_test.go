package updater

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeGokrazy answers like gokrazy's update handlers (gokrazy/update.go):
// basic auth as "gokrazy", PUT bodies answered with the hex SHA-256 of what
// was written, POST for switch and reboot.
type fakeGokrazy struct {
	password string
	features string
	corrupt  bool // answer a wrong hash, as if the write was damaged

	mu      sync.Mutex
	calls   []string
	written map[string][]byte
}

func (f *fakeGokrazy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, pw, ok := r.BasicAuth()
	if !ok || user != "gokrazy" || pw != f.password {
		http.Error(w, "invalid username/password", http.StatusUnauthorized)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	switch r.URL.Path {
	case "/update/features":
		fmt.Fprint(w, f.features)
	case "/update/root", "/update/boot":
		if r.Method != http.MethodPut {
			http.Error(w, "expected a PUT request", http.StatusBadRequest)
			return
		}
		b, _ := io.ReadAll(r.Body)
		f.written[r.URL.Path] = b
		if f.corrupt {
			b = append(b, 0)
		}
		fmt.Fprintf(w, "%x", sha256.Sum256(b))
	case "/update/switch":
		if r.Method != http.MethodPost {
			http.Error(w, "expected a POST request", http.StatusBadRequest)
			return
		}
	case "/reboot":
		if r.Method != http.MethodPost || r.FormValue("kexec") != "off" {
			http.Error(w, "expected a POST request with kexec=off", http.StatusBadRequest)
			return
		}
		fmt.Fprintln(w, "Rebooting...")
	default:
		http.NotFound(w, r)
	}
}

func newFake(t *testing.T) (*fakeGokrazy, *Client, Files) {
	t.Helper()
	f := &fakeGokrazy{password: "secret", features: "partuuid,updatehash,gpt,", written: map[string][]byte{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	files := Files{Root: filepath.Join(dir, "root.squashfs"), Boot: filepath.Join(dir, "boot.fat")}
	os.WriteFile(files.Root, []byte("root file system"), 0o644)
	os.WriteFile(files.Boot, []byte("boot file system"), 0o644)
	return f, &Client{BaseURL: srv.URL, Password: "secret"}, files
}

func TestUpdateOrder(t *testing.T) {
	f, c, files := newFake(t)
	if err := c.Update(context.Background(), files, true); err != nil {
		t.Fatal(err)
	}
	want := []string{"GET /update/features", "PUT /update/root", "PUT /update/boot", "POST /update/switch", "POST /reboot"}
	if diff := cmp.Diff(want, f.calls); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if string(f.written["/update/root"]) != "root file system" || string(f.written["/update/boot"]) != "boot file system" {
		t.Errorf("written %q", f.written)
	}
}

func TestUpdateWithoutRebootOrBoot(t *testing.T) {
	f, c, files := newFake(t)
	files.Boot = ""
	if err := c.Update(context.Background(), files, false); err != nil {
		t.Fatal(err)
	}
	want := []string{"GET /update/features", "PUT /update/root", "POST /update/switch"}
	if diff := cmp.Diff(want, f.calls); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestUpdateFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*fakeGokrazy, *Client)
		want  string
		calls int // requests made before stopping
	}{
		{"wrong password", func(f *fakeGokrazy, c *Client) { c.Password = "nope" }, "rejected the password", 0},
		{"hash mismatch stops before switching", func(f *fakeGokrazy, c *Client) { f.corrupt = true }, "SHA-256", 2},
		{"old gokrazy without GPT root", func(f *fakeGokrazy, c *Client) { f.features = "partuuid,updatehash," }, `"gpt"`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, c, files := newFake(t)
			tc.setup(f, c)
			err := c.Update(context.Background(), files, true)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Update() = %v, want an error mentioning %s", err, tc.want)
			}
			if len(f.calls) != tc.calls {
				t.Errorf("%d requests reached the appliance (%q), want %d", len(f.calls), f.calls, tc.calls)
			}
		})
	}
}
