package boottest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/ndp"

	"codeberg.org/monostack/gizmo/image/builder"
	"codeberg.org/monostack/gizmo/image/updater"
	"codeberg.org/monostack/gizmo/lab/netlab"
	"codeberg.org/monostack/gizmo/web/tlscert"
)

// TestBootQEMU builds the qemu-amd64 image from config.json with the real
// daemon, boots it with SeaBIOS (the legacy BIOS path the APU takes) under
// TCG, and wires its two virtio NICs into the lab: gz-gizmo, left without a
// daemon, becomes a patch panel that bridges tap devices to the veths
// towards gz-isp and gz-switch. The VM's real-time clock starts years
// behind. It then checks what a person would: the console shows gokrazy
// starting the gizmo, Kea delegated a prefix to it, gz-lan-v6 hears its RA
// with PREF64, the dashboard answers, and its Date header is the real time
// once the lab's NTP server has answered. Then it tries updates that are
// not signed with the image's key, which the VM refuses, updates it with a
// signed one over HTTPS and checks that it boots root B. Last, it cuts the
// power, lets the delegation run out while the VM is off, and boots it
// again with the clock behind: the expired prefix is never offered.
func TestBootQEMU(t *testing.T) {
	requireVM(t)
	qemu, board, img := buildQEMUImage(t)

	l := vmLab(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 22*time.Minute)
	defer cancel()
	start := time.Now()

	// The VM's real-time clock starts years behind, as a board without
	// one starts at its image's build time.
	serial := filepath.Join(t.TempDir(), "serial.log")
	vm := startVM(t, qemu, img, serial)

	// 1. The console: SeaBIOS → syslinux → kernel → gokrazy → the gizmo,
	// started on the RTC's date, years behind.
	rtc, err := time.Parse("2006-01-02T15:04:05", rtcBase)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"SYSLINUX",
		"Run /gokrazy/init as init process",
		`gizmo: ` + rtc.Format("2006/01/02"),
		`gokrazy: attempt 0, starting ["/user/gizmo"`,
	} {
		if err := waitSerial(ctx, serial, want); err != nil {
			t.Fatalf("serial console: %v", err)
		}
	}

	// 2. The lab's Kea delegated a prefix to the VM.
	if err := netlab.WaitFor(ctx, "Kea to delegate a prefix", func(context.Context) (bool, error) {
		ps, err := l.DelegatedPrefixes()
		return len(ps) > 0, err
	}); err != nil {
		t.Fatal(err)
	}
	ps, _ := l.DelegatedPrefixes()
	t.Logf("Kea delegated %v", ps)

	// 3. gz-lan-v6 hears the gizmo's RA, with PREF64.
	router, pref64 := waitRAWithPREF64(t, ctx)
	if pref64 != netlab.Pref64 {
		t.Errorf("RA from %v carries PREF64 %v, want %v", router, pref64, netlab.Pref64)
	}

	// 4. The dashboard answers on the LAN, over HTTP and HTTPS.
	for _, url := range []string{fmt.Sprintf("http://[%s%%25%s]/", router, netlab.HostIf), fmt.Sprintf("https://[%s%%25%s]/", router, netlab.HostIf)} {
		out, err := l.WaitExec(ctx, netlab.NSLanV6, func(out string) bool { return strings.HasPrefix(out, "2") },
			"curl", "-sS", "-k", "-g", "-o", "/dev/null", "-m", "5", "-w", "%{http_code}", url)
		if err != nil {
			t.Fatalf("dashboard at %s: %v (%s)", url, err, out)
		}
		t.Logf("dashboard at %s answered %s; power-on to dashboard took %v", url, out, time.Since(start).Round(time.Second))
	}

	// 4b. NTP from the lab's chrony (Kea's options 42 and 56) set the
	// clock: the dashboard's Date header is the host's time.
	checkClock(t, ctx, router)

	// 5. A network update, over HTTPS to the key the console shows.
	// Unsigned and wrongly signed images are refused; a signed one is
	// installed: the root goes to p3, gokrazy rewrites the command line
	// that syslinux INCLUDEs, and after the reboot the kernel mounts root
	// B and gokrazy starts the gizmo again.
	pin := consoleKey(t, ctx, serial, 1)
	t.Logf("the console shows the TLS key %s", pin)
	parts, err := builder.BuildParts(ctx, builder.Options{
		Config: labConfig(t, qemuPorts...), Board: board, ModuleDir: moduleRoot(), Password: "boot-test", SkipEEPROM: true,
		UpdateKey: signingKey.Public().(ed25519.PublicKey),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer parts.Close()
	baseURL := fmt.Sprintf("https://[%s%%25%s]:8080", router, netlab.HostIf)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return netlab.DialContext(ctx, netlab.NSLanV6, network, addr)
	}
	refusedUpdates(t, ctx, baseURL, pin, dial, parts.Root)
	cl := &updater.Client{BaseURL: baseURL, Password: "boot-test", SigningKey: signingKey, KeySHA256: pin, DialContext: dial}
	start = time.Now()
	if err := cl.Update(ctx, updater.Files{Root: parts.Root, Boot: parts.Boot}, true); err != nil {
		t.Fatal(err)
	}
	if err := waitSerial(ctx, serial, "root=PARTUUID="+strings.ToLower(parts.Layout.PartGUIDs[0])+"/PARTNROFF=2"); err != nil {
		t.Fatalf("after the update: %v", err)
	}
	if err := netlab.WaitFor(ctx, "the gizmo to start from root B", func(context.Context) (bool, error) {
		b, err := os.ReadFile(serial)
		return bytes.Count(b, []byte(`gokrazy: attempt 0, starting ["/user/gizmo"`)) >= 2, err
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("update, reboot into root B and gizmo start took %v", time.Since(start).Round(time.Second))
	// The TLS key lives in /perm: the pin holds across the update.
	if again := consoleKey(t, ctx, serial, 2); again != pin {
		t.Errorf("after the update the gizmo presents key %s, before %s", again, pin)
	}
	// After the reboot the clock is set again (from /perm, then NTP).
	checkClock(t, ctx, router)

	// 6. A power cut, a delegation that runs out while the gizmo is off,
	// and a boot with the RTC years behind: the expired prefix is never
	// offered, the new one is.
	start = time.Now()
	rebootWithExpiredDelegation(t, ctx, l, vm, func(serial string) *vmProcess { return startVM(t, qemu, img, serial) })
	t.Logf("power cut, renumbering and reboot took %v", time.Since(start).Round(time.Second))
}

// vmProcess is one run of qemu with the image.
type vmProcess struct {
	cmd    *exec.Cmd
	out    bytes.Buffer
	serial string
	once   sync.Once
}

// kill cuts the VM's power.
func (v *vmProcess) kill() {
	v.once.Do(func() {
		v.cmd.Process.Kill()
		v.cmd.Wait()
	})
}

// startVM boots the image in qemu inside gz-gizmo, its NICs on the patch
// panel's tap devices, its console in serial and a virtio RNG, with the
// real-time clock at rtcBase. The test's cleanup kills it, and shows its console if the
// test failed; registered after the lab's cleanup, it runs first, so the
// VM goes before its tap devices and namespace.
func startVM(t *testing.T, qemu, img, serial string) *vmProcess {
	t.Helper()
	v := &vmProcess{serial: serial}
	v.cmd = exec.Command("ip", "netns", "exec", netlab.NSGizmo, qemu,
		// Two CPUs, as the boards have, emulated by one host thread:
		// with a thread per CPU, TCG races the kernel's live patching
		// of its own text and the guest dies at random of an int3 oops.
		"-machine", "pc", "-accel", "tcg,thread=single", "-smp", "2", "-m", "1024",
		"-display", "none", "-monitor", "none",
		"-rtc", "base="+rtcBase,
		"-serial", "file:"+serial,
		"-drive", "file="+img+",format=raw,if=virtio",
		"-device", "i6300esb",
		// The boards have a hardware RNG; without one, the emulated CPU
		// (no RDRAND, a regular timer) left the kernel's crng
		// uninitialised for minutes after a reboot, and every DHCP
		// transaction ID waited for it.
		"-device", "virtio-rng-pci",
		"-netdev", "tap,id=wan,ifname=tap-wan,script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=wan,mac="+netlab.MACGizmoWAN,
		"-netdev", "tap,id=lan,ifname=tap-lan,script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=lan,mac="+netlab.MACGizmoLAN,
	)
	v.cmd.Stdout, v.cmd.Stderr = &v.out, &v.out
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		v.kill()
		if t.Failed() {
			b, _ := os.ReadFile(serial)
			t.Logf("qemu: %s\nserial console %s:\n%s", v.out.String(), filepath.Base(serial), b)
		}
	})
	return v
}

// signingKey signs the boot test's updates (a fixed seed: the image is
// reproducible).
var signingKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x42}, ed25519.SeedSize))

var consoleKeyRE = regexp.MustCompile(`update API TLS [^\n]*public_key_sha256=([0-9A-F:]{95})`)

// consoleKey waits for the n-th start of the update API on the serial
// console and returns the TLS key fingerprint it logged: what the owner
// reads there to pin.
func consoleKey(t *testing.T, ctx context.Context, serial string, n int) string {
	t.Helper()
	var fp string
	if err := netlab.WaitFor(ctx, "the update API's TLS key on the console", func(context.Context) (bool, error) {
		b, err := os.ReadFile(serial)
		m := consoleKeyRE.FindAllSubmatch(b, -1)
		if len(m) >= n {
			fp = string(m[n-1][1])
		}
		return fp != "", err
	}); err != nil {
		t.Fatal(err)
	}
	return fp
}

// refusedUpdates tries what someone with the password but without the
// signing key could: an unsigned root, a root signed with another key, and
// then a switch to whatever was written. The gizmo refuses each, so the
// next boot is still root A's.
func refusedUpdates(t *testing.T, ctx context.Context, baseURL, pin string, dial func(context.Context, string, string) (net.Conn, error), root string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: dial, TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, // pinned below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if got := tlscert.PublicKeyFingerprint(cs.PeerCertificates[0]); got != pin {
				return fmt.Errorf("key %s, console showed %s", got, pin)
			}
			return nil
		},
	}}}
	send := func(method, path string, body []byte) (int, string) {
		req, err := http.NewRequestWithContext(ctx, method, baseURL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("gokrazy", "boot-test")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(msg))
	}
	code, msg := send(http.MethodPut, "/update/root", []byte("an unsigned root"))
	if code != http.StatusForbidden {
		t.Errorf("unsigned root: %d %q, want 403", code, msg)
	}
	t.Logf("unsigned root: %d %s", code, msg)
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x66}, ed25519.SeedSize))
	wrong := &updater.Client{BaseURL: baseURL, Password: "boot-test", SigningKey: other, KeySHA256: pin, DialContext: dial}
	err := wrong.Update(ctx, updater.Files{Root: root}, false)
	if err == nil || !strings.Contains(err.Error(), "not signed with the key") {
		t.Errorf("root signed with another key: %v, want a refusal", err)
	}
	t.Logf("root signed with another key: %v", err)
	code, msg = send(http.MethodPost, "/update/switch", nil)
	if code != http.StatusConflict {
		t.Errorf("switch after refused roots: %d %q, want 409", code, msg)
	}
	t.Logf("switch after them: %d %s", code, msg)
	if code, msg := send(http.MethodPut, "/update/mbr", []byte("x")); code != http.StatusForbidden {
		t.Errorf("gokrazy's MBR endpoint: %d %q, want 403", code, msg)
	}
	// gokrazy's own, unsigned API is not on the network any more.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.Replace(baseURL, "https:", "http:", 1)+"/update/features", nil)
	req.SetBasicAuth("gokrazy", "boot-test")
	if resp, err := (&http.Client{Transport: &http.Transport{DialContext: dial}}).Do(req); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP on the update port answered %q", body)
		}
		t.Logf("plain HTTP on the update port: %s", resp.Status)
	}
}

// patchPanel turns gz-gizmo into two bridges: tap-wan with the veth to
// gz-isp, tap-lan with the veth to gz-switch. The veths give up their MACs
// to the VM's NICs, so that the VM has the lab gizmo's link-local addresses
// (the ISP routes the delegated prefixes to fe80::ff:fe00:102).
func patchPanel(t *testing.T, ctx context.Context, l *netlab.Lab) {
	t.Helper()
	for _, side := range []struct{ veth, tap, bridge, mac string }{
		{netlab.GizmoWAN, "tap-wan", "br-wan", "02:00:00:00:01:fe"},
		{netlab.GizmoLAN, "tap-lan", "br-lan", "02:00:00:00:02:fe"},
	} {
		for _, args := range [][]string{
			{"link", "set", side.veth, "down"},
			{"link", "set", side.veth, "address", side.mac},
			{"link", "add", side.bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0", "mcast_snooping", "0"},
			{"tuntap", "add", "dev", side.tap, "mode", "tap"},
			{"link", "set", side.veth, "master", side.bridge, "up"},
			{"link", "set", side.tap, "master", side.bridge, "up"},
			{"link", "set", side.bridge, "up"},
		} {
			if out, err := exec.CommandContext(ctx, "ip", append([]string{"-n", netlab.NSGizmo}, args...)...).CombinedOutput(); err != nil {
				t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
			}
		}
	}
}

func waitSerial(ctx context.Context, path, want string) error {
	return netlab.WaitFor(ctx, fmt.Sprintf("%q on the console", want), func(context.Context) (bool, error) {
		b, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			return false, nil
		}
		return bytes.Contains(b, []byte(want)), err
	})
}

// waitRAWithPREF64 solicits router advertisements in gz-lan-v6 until one
// carries a PREF64 option (RFC 8781), and returns its source and prefix.
func waitRAWithPREF64(t *testing.T, ctx context.Context) (netip.Addr, netip.Prefix) {
	t.Helper()
	var (
		router netip.Addr
		pref64 netip.Prefix
	)
	err := solicitRAs(ctx, nil, func(from netip.Addr, ra *ndp.RouterAdvertisement) (bool, error) {
		for _, o := range ra.Options {
			if p, ok := o.(*ndp.PREF64); ok {
				router, pref64 = from, p.Prefix
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no RA with PREF64 in %s: %v", netlab.NSLanV6, err)
	}
	return router, pref64
}
