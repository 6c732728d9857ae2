package boottest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"codeberg.org/monostack/gizmo/hardware"
	"codeberg.org/monostack/gizmo/lab/netlab"
)

// pi3DTB is the device tree the Pi 3 firmware picks for a Raspberry Pi 3
// Model B, the board qemu's raspi3b machine models.
const pi3DTB = "bcm2710-rpi-3-b.dtb"

// noPMWatchdog keeps the bcm2835_wdt driver from registering. qemu 7.2's
// BCM2835 power-management block resets the machine the moment the
// watchdog is armed instead of after its timeout, and gokrazy's init arms
// it at once. Without /dev/watchdog gokrazy logs that it runs without one
// and goes on. Test only: the real Pi needs the watchdog.
const noPMWatchdog = "initcall_blacklist=bcm2835_wdt_driver_init"

// TestBootRaspberryPi3QEMU builds the rpi3 image with the real daemon and
// boots it in qemu-system-aarch64 -M raspi3b under TCG, with the image's
// own kernel, device tree and command line taken from its FAT (the test
// does the firmware's part, see pifirmware_test.go). A USB network adapter
// (usb-net, CDC Ethernet) stands in for the Pi 3's one Ethernet port, which
// is on USB too; it is patched into the lab as the qemu-amd64 test's WAN is
// (gz-gizmo without a daemon bridges a tap device to the veth towards
// gz-isp). With one port the gizmo runs in the existing-network mode. The
// test checks the console up to the gizmo's own log lines and the roles it
// chose, then that the gizmo reached the ISP: Kea leased its port an IPv4
// address, and the ISP reaches the dashboard there.
func TestBootRaspberryPi3QEMU(t *testing.T) {
	// qemu-system-aarch64, fdtget and mtools come with these groups.
	requireVM(t)
	board, err := hardware.Lookup("rpi3")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(board.DeviceTrees, pi3DTB) {
		t.Fatalf("board rpi3 does not ship %s", pi3DTB)
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "gizmo.img")
	// The Pi's Ethernet ports are on USB and named in probe order: the
	// config names none, so the roles service has to find the uplink by
	// listening, as on the real board.
	buildImage(t, board, labConfig(t), img)
	buildCtx, cancelBuild := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancelBuild()
	kernel, dtb, cmdline := piBootFiles(t, buildCtx, img, dir)
	t.Logf("kernel command line: %s", cmdline)
	// qemu's SD card model takes only power-of-two sizes; a qcow2 overlay
	// gives the card 2 GiB and leaves the image file as it was built.
	disk := filepath.Join(dir, "sd.qcow2")
	if out, err := exec.CommandContext(buildCtx, "qemu-img", "create", "-q", "-f", "qcow2",
		"-b", img, "-F", "raw", disk, "2G").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v: %s", err, out)
	}

	l := vmLab(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	serial := filepath.Join(dir, "serial.log")
	vm := exec.Command("ip", "netns", "exec", netlab.NSGizmo, "qemu-system-aarch64",
		"-machine", "raspi3b",
		// One TCG thread for the four cores: with a thread per core the
		// kernel can oops while it patches its own text.
		"-accel", "tcg,thread=single",
		// A reset of the machine ends qemu, so that a watchdog that fires
		// shows as an exit rather than as a boot loop.
		"-no-reboot",
		"-display", "none", "-monitor", "none",
		"-kernel", kernel, "-dtb", dtb, "-append", cmdline,
		"-drive", "file="+disk+",if=sd,format=qcow2",
		// The first serial port is the PL011 (Bluetooth on the Pi 3), the
		// second the mini UART on GPIO 14/15: the console.
		"-serial", "null", "-serial", "file:"+serial,
		"-netdev", "tap,id=wan,ifname=tap-wan,script=no,downscript=no",
		"-device", "usb-net,netdev=wan,mac="+netlab.MACGizmoWAN,
	)
	var qemuOut bytes.Buffer
	vm.Stdout, vm.Stderr = &qemuOut, &qemuOut
	start := time.Now()
	if err := vm.Start(); err != nil {
		t.Fatal(err)
	}
	// vmCtx ends when qemu does, with the reason as its cause, so that
	// every wait below stops at once.
	vmCtx, vmGone := context.WithCancelCause(ctx)
	exited := make(chan struct{})
	go func() {
		err := vm.Wait()
		vmGone(fmt.Errorf("qemu exited after %v: %v", time.Since(start).Round(time.Second), err))
		close(exited)
	}()
	// Registered after the lab's cleanup, so it runs first: the VM goes
	// before its tap devices and namespace.
	t.Cleanup(func() {
		vm.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(serial)
			t.Logf("qemu: %s\nserial console:\n%s", qemuOut.String(), b)
		}
	})
	fail := func(err error) {
		t.Helper()
		select {
		case <-exited:
			t.Fatalf("%v: %v", err, context.Cause(vmCtx))
		default:
			t.Fatal(err)
		}
	}

	// 1. The console: the kernel, gokrazy, the gizmo's own log lines, and
	// the roles it chose for its one port.
	for _, want := range []string{
		"Booting Linux on physical CPU",
		"Run /gokrazy/init as init process",
		"gizmo: time=",
		`msg="roles detected" roles="existing network on `,
		"msg=starting wan=uplink0 lan=uplink0",
	} {
		if err := waitSerial(vmCtx, serial, want); err != nil {
			fail(fmt.Errorf("serial console: %w", err))
		}
		t.Logf("console shows %s after %v", want, time.Since(start).Round(time.Second))
	}

	// 2. The gizmo reached the ISP: Kea leased its port an address.
	var lease netlab.Lease
	if err := netlab.WaitFor(vmCtx, "Kea to lease the gizmo an IPv4 address", func(context.Context) (bool, error) {
		leases, err := l.KeaLeases4()
		for _, le := range leases {
			if strings.EqualFold(le.ClientID, netlab.MACGizmoWAN) {
				lease = le
				return true, nil
			}
		}
		return false, err
	}); err != nil {
		fail(err)
	}
	t.Logf("Kea leased %v after %v", lease.Prefix.Addr(), time.Since(start).Round(time.Second))

	// 3. And the ISP reaches the gizmo there: the dashboard answers.
	url := fmt.Sprintf("http://%s/", lease.Prefix.Addr())
	out, err := l.WaitExec(vmCtx, netlab.NSISP, func(out string) bool { return strings.HasPrefix(out, "2") },
		"curl", "-sS", "-o", "/dev/null", "-m", "10", "-w", "%{http_code}", url)
	if err != nil {
		fail(fmt.Errorf("dashboard at %s: %w (%s)", url, err, out))
	}
	t.Logf("dashboard at %s answered %s; power-on to dashboard took %v", url, out, time.Since(start).Round(time.Second))
}

// piBootFiles takes the kernel, the Pi 3 B device tree and cmdline.txt from
// the image's FAT into dir and returns the kernel's and the device tree's
// paths and the command line as the firmware would pass it, plus the
// test's watchdog workaround.
func piBootFiles(t *testing.T, ctx context.Context, img, dir string) (kernel, dtb, cmdline string) {
	t.Helper()
	boot := filepath.Join(dir, "boot")
	if err := os.Mkdir(boot, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := extractBootFiles(ctx, img, boot, "vmlinuz", pi3DTB, "cmdline.txt"); err != nil {
		t.Fatal(err)
	}
	kernel, dtb = filepath.Join(boot, "vmlinuz"), filepath.Join(boot, pi3DTB)
	txt, err := os.ReadFile(filepath.Join(boot, "cmdline.txt"))
	if err != nil {
		t.Fatal(err)
	}
	bootargs, err := fdtget(ctx, dtb, "/chosen", "bootargs")
	if err != nil {
		t.Fatal(err)
	}
	cmdline, err = piFirmwareCmdline(bootargs, string(txt), dtbTTY(ctx, dtb))
	if err != nil {
		t.Fatalf("cmdline.txt: %v", err)
	}
	return kernel, dtb, cmdline + " " + noPMWatchdog
}
