package updater

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
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

	"codeberg.org/monostack/gizmo/web/tlscert"
)

// fakeGokrazy answers like gokrazy's update handlers (gokrazy/update.go),
// which the Server calls in process, behind its own password check: PUT
// bodies answered with the hex SHA-256 of what was written, POST for switch
// and reboot.
type fakeGokrazy struct {
	features string
	corrupt  bool // answer a wrong hash, as if the write was damaged

	mu      sync.Mutex
	calls   []string
	written map[string][]byte
}

func (f *fakeGokrazy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
	case "/update/switch", "/update/testboot":
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
	case "/", "/status":
		fmt.Fprintln(w, "gokrazy status")
	default:
		fmt.Fprintln(w, "gokrazy would serve this")
	}
}

func (f *fakeGokrazy) callList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

type fixture struct {
	gokrazy  *fakeGokrazy
	server   *Server
	client   *Client
	files    Files
	url, pin string
}

// newFixture runs a Server with a fake gokrazy behind HTTPS, and a Client
// that pins the server's key and signs with the key the server trusts.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeGokrazy{features: "partuuid,updatehash,gpt,", written: map[string][]byte{}}
	s := &Server{PublicKey: pub, Password: "secret", Gokrazy: f, SpoolDir: t.TempDir()}
	srv := httptest.NewTLSServer(s.Handler())
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	files := Files{Root: filepath.Join(dir, "root.squashfs"), Boot: filepath.Join(dir, "boot.fat")}
	os.WriteFile(files.Root, []byte("root file system"), 0o644)
	os.WriteFile(files.Boot, []byte("boot file system"), 0o644)
	pin := tlscert.PublicKeyFingerprint(srv.Certificate())
	return &fixture{gokrazy: f, server: s, files: files, url: srv.URL, pin: pin,
		client: &Client{BaseURL: srv.URL, Password: "secret", SigningKey: key, KeySHA256: pin}}
}

// raw sends one request as an attacker with the password would, pinning
// the key like the client.
func (fx *fixture) raw(t *testing.T, method, path string, body []byte, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, fx.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("gokrazy", "secret")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := fx.client.http().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func TestSignedUpdateIsInstalled(t *testing.T) {
	fx := newFixture(t)
	if err := fx.client.Update(context.Background(), fx.files, true); err != nil {
		t.Fatal(err)
	}
	want := []string{"GET /update/features", "PUT /update/root", "PUT /update/boot", "POST /update/switch", "POST /reboot"}
	if diff := cmp.Diff(want, fx.gokrazy.callList()); diff != "" {
		t.Errorf("what reached gokrazy (-want +got):\n%s", diff)
	}
	if string(fx.gokrazy.written["/update/root"]) != "root file system" || string(fx.gokrazy.written["/update/boot"]) != "boot file system" {
		t.Errorf("written %q", fx.gokrazy.written)
	}
}

func TestUpdateWithoutRebootOrBoot(t *testing.T) {
	fx := newFixture(t)
	fx.files.Boot = ""
	if err := fx.client.Update(context.Background(), fx.files, false); err != nil {
		t.Fatal(err)
	}
	want := []string{"GET /update/features", "PUT /update/root", "POST /update/switch"}
	if diff := cmp.Diff(want, fx.gokrazy.callList()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

// A stolen password alone installs nothing: an unsigned root is refused
// before a byte is written, a root signed with another key is wiped after
// it was streamed, and no switch follows either.
func TestUnsignedOrWronglySignedRootIsRefused(t *testing.T) {
	image := []byte("an attacker's root file system")
	digest := sha256.Sum256(image)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		name    string
		sig     string
		written bool // the body reached the partition (and was wiped)
	}{
		{"unsigned", "", false},
		{"signed with another key", SignDigest(other, PartRoot, int64(len(image)), digest), true},
		{"a signature that is not base64", "!!", true},
		{"the right key, but signed as a boot image", "", true},
		{"the right key, but another length", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			sig := tc.sig
			switch tc.name {
			case "the right key, but signed as a boot image":
				sig = SignDigest(fx.client.SigningKey, PartBoot, int64(len(image)), digest)
			case "the right key, but another length":
				sig = SignDigest(fx.client.SigningKey, PartRoot, int64(len(image))+1, digest)
			}
			h := http.Header{}
			if sig != "" {
				h.Set(SignatureHeader, sig)
			}
			code, msg := fx.raw(t, "PUT", "/update/root", image, h)
			if code != http.StatusForbidden {
				t.Fatalf("PUT /update/root: %d %q, want 403", code, msg)
			}
			got := fx.gokrazy.written["/update/root"]
			switch {
			case !tc.written && got != nil:
				t.Errorf("an unsigned image reached the partition")
			case tc.written && !bytes.Equal(got, make([]byte, wipeLen)):
				t.Errorf("the refused image was not wiped: the partition holds %.40q", got)
			}
			if code, msg := fx.raw(t, "POST", "/update/switch", nil, nil); code != http.StatusConflict {
				t.Errorf("switch after a refused root: %d %q, want 409", code, msg)
			}
			if code, _ := fx.raw(t, "POST", "/update/testboot", nil, nil); code != http.StatusConflict {
				t.Errorf("testboot after a refused root: %d, want 409", code)
			}
			for _, c := range fx.gokrazy.callList() {
				if strings.Contains(c, "switch") || strings.Contains(c, "testboot") {
					t.Errorf("%s reached gokrazy", c)
				}
			}
		})
	}
}

// The boot partition is the live one: a boot image whose signature does
// not verify never reaches it.
func TestWronglySignedBootNeverReachesThePartition(t *testing.T) {
	fx := newFixture(t)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	image := []byte("an attacker's kernel")
	for _, sig := range []string{"", SignDigest(other, PartBoot, int64(len(image)), sha256.Sum256(image))} {
		h := http.Header{}
		if sig != "" {
			h.Set(SignatureHeader, sig)
		}
		if code, msg := fx.raw(t, "PUT", "/update/boot", image, h); code != http.StatusForbidden {
			t.Errorf("PUT /update/boot: %d %q, want 403", code, msg)
		}
	}
	if fx.gokrazy.written["/update/boot"] != nil {
		t.Error("a refused boot image reached the boot partition")
	}
	if left, _ := os.ReadDir(fx.server.SpoolDir); len(left) != 0 {
		t.Errorf("the spool dir keeps %d files", len(left))
	}
}

func TestGokrazysOtherWritesAreNotServed(t *testing.T) {
	fx := newFixture(t)
	for _, p := range []string{"/update/mbr", "/update/bootonly", "/update/device-specific/uboot", "/uploadtemp/x", "/divert"} {
		if code, _ := fx.raw(t, "PUT", p, []byte("x"), nil); code != http.StatusForbidden {
			t.Errorf("PUT %s: %d, want 403", p, code)
		}
	}
	if code, _ := fx.raw(t, "POST", "/divert", nil, nil); code != http.StatusForbidden {
		t.Errorf("POST /divert: %d", code)
	}
	if calls := fx.gokrazy.callList(); len(calls) != 0 {
		t.Errorf("reached gokrazy: %q", calls)
	}
	// Its read-only status page passes through.
	if code, body := fx.raw(t, "GET", "/status", nil, nil); code != 200 || body != "gokrazy status" {
		t.Errorf("GET /status: %d %q", code, body)
	}
}

func TestUpdateFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*fixture)
		want  string
		calls int // requests that reached gokrazy before stopping
	}{
		{"wrong password", func(fx *fixture) { fx.client.Password = "nope" }, "rejected the password", 0},
		{"hash mismatch stops before switching", func(fx *fixture) { fx.gokrazy.corrupt = true }, "other bytes", 3}, // features, root, wipe
		{"old gokrazy without GPT root", func(fx *fixture) { fx.gokrazy.features = "partuuid,updatehash," }, `"gpt"`, 1},
		{"a build with another signing key", func(fx *fixture) { _, fx.client.SigningKey, _ = ed25519.GenerateKey(rand.Reader) }, "not signed with the key", 3},
		{"another TLS key than the pinned one", func(fx *fixture) { fx.client.KeySHA256 = strings.Repeat("AB:", 31) + "AB" }, "not the pinned one", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			tc.setup(fx)
			err := fx.client.Update(context.Background(), fx.files, true)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Update() = %v, want an error mentioning %s", err, tc.want)
			}
			if calls := fx.gokrazy.callList(); len(calls) != tc.calls {
				t.Errorf("%d requests reached gokrazy (%q), want %d", len(calls), calls, tc.calls)
			}
		})
	}
}

func TestPasswordGuessingIsThrottled(t *testing.T) {
	fx := newFixture(t)
	fx.client.Password = "guess"
	var throttled bool
	for range 20 {
		_, err := fx.client.Features(context.Background())
		if err != nil && strings.Contains(err.Error(), "429") {
			throttled = true
			break
		}
	}
	if !throttled {
		t.Error("20 wrong passwords in a row were all checked")
	}
}

func TestFirstContactLearnsTheKey(t *testing.T) {
	fx := newFixture(t)
	c := &Client{BaseURL: fx.url}
	got, err := c.KeySHA256Of(context.Background())
	if err != nil || got != fx.pin {
		t.Errorf("KeySHA256Of = %q, %v; want %s", got, err, fx.pin)
	}
	var mismatch error
	fx.client.KeySHA256 = strings.Repeat("00:", 31) + "00"
	_, mismatch = fx.client.Features(context.Background())
	if !errors.Is(mismatch, ErrKeyMismatch) {
		t.Errorf("with another pin: %v, want ErrKeyMismatch", mismatch)
	}
}

func TestSignatureRoundTrip(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	file := filepath.Join(t.TempDir(), "root.squashfs")
	os.WriteFile(file, []byte("root"), 0o644)
	sig, err := SignFile(key, PartRoot, file)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(pub, PartRoot, 4, sha256.Sum256([]byte("root")), sig); err != nil {
		t.Errorf("a good signature: %v", err)
	}
	for name, err := range map[string]error{
		"another image": Verify(pub, PartRoot, 4, sha256.Sum256([]byte("r00t")), sig),
		"another part":  Verify(pub, PartBoot, 4, sha256.Sum256([]byte("root")), sig),
		"no signature":  Verify(pub, PartRoot, 4, sha256.Sum256([]byte("root")), ""),
		"truncated":     Verify(pub, PartRoot, 4, sha256.Sum256([]byte("root")), sig[:20]),
		"no key":        Verify(nil, PartRoot, 4, sha256.Sum256([]byte("root")), sig),
	} {
		if !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: %v, want ErrBadSignature", name, err)
		}
	}
}

func TestSigningKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts", "gizmo", "gizmo-update.key")
	k1, created, err := LoadOrCreateKey(path)
	if err != nil || !created {
		t.Fatalf("first use: created %v, %v", created, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	k2, created, err := LoadOrCreateKey(path)
	if err != nil || created || !k1.Equal(k2) {
		t.Errorf("second use: created %v, same key %v, %v", created, k1.Equal(k2), err)
	}
	pub, err := DecodePublicKey(EncodePublicKey(k1.Public().(ed25519.PublicKey)))
	if err != nil || !pub.Equal(k1.Public()) {
		t.Errorf("public key round trip: %v", err)
	}
	os.WriteFile(path, []byte("not a key"), 0o600)
	if _, _, err := LoadOrCreateKey(path); err == nil {
		t.Error("a damaged key file was replaced (images built with the old key would refuse every update)")
	}
}

func FuzzVerify(f *testing.F) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	d := sha256.Sum256([]byte("root"))
	f.Add(SignDigest(key, PartRoot, 4, d), int64(4))
	f.Add("", int64(0))
	good := ed25519.Sign(key, signedMessage(PartRoot, 4, d))
	f.Fuzz(func(t *testing.T, sig string, size int64) {
		if Verify(pub, PartRoot, size, d, sig) != nil {
			return
		}
		raw, _ := base64.StdEncoding.DecodeString(sig)
		if size != 4 || !bytes.Equal(raw, good) {
			t.Errorf("accepted signature %q for size %d", sig, size)
		}
	})
}
