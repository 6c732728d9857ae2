package boottest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"codeberg.org/monostack/gizmo/image/builder"
)

// qemu-system-aarch64 -M raspi3b loads the kernel and the device tree
// itself: there is no VideoCore firmware (start.elf) in the machine. The
// helpers here do the two jobs of that firmware the boot depends on, from
// the files of the image's FAT, so that the kernel sees what it sees on a
// real Pi 3.

// serialConsole matches a console=serialN argument. The firmware rewrites
// it to the tty of the UART that the device tree's serialN alias names, so
// that one cmdline.txt works whichever UART config.txt puts on GPIO 14/15;
// Linux itself has no console called serialN.
var serialConsole = regexp.MustCompile(`^console=serial([0-9]+)(,.*)?$`)

// piFirmwareCmdline is the kernel command line the Pi firmware builds: the
// device tree's /chosen/bootargs (the firmware keeps them in front; they
// carry 8250.nr_uarts=1, without which the mini UART gets no tty), then
// cmdline.txt with each console=serialN replaced by the tty that tty
// returns for the alias serialN.
func piFirmwareCmdline(dtBootargs, cmdlineTxt string, tty func(alias string) (string, error)) (string, error) {
	args := strings.Fields(dtBootargs)
	for _, a := range strings.Fields(cmdlineTxt) {
		if m := serialConsole.FindStringSubmatch(a); m != nil {
			name, err := tty("serial" + m[1])
			if err != nil {
				return "", fmt.Errorf("%s: %w", a, err)
			}
			a = "console=" + name + m[2]
		}
		args = append(args, a)
	}
	return strings.Join(args, " "), nil
}

// uartTTY names the tty Linux gives the UART that the serialN alias points
// at, from the node's compatible strings. The mini UART is the 8250
// driver's only port (8250.nr_uarts=1), so it is always ttyS0; the PL011
// driver numbers its ports by their serial alias.
func uartTTY(alias string, compatible []string) (string, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(alias, "serial"))
	if err != nil || !strings.HasPrefix(alias, "serial") {
		return "", fmt.Errorf("%q is not a serialN alias", alias)
	}
	switch {
	case slices.Contains(compatible, "brcm,bcm2835-aux-uart"):
		return "ttyS0", nil
	case slices.Contains(compatible, "arm,pl011"):
		return "ttyAMA" + strconv.Itoa(n), nil
	}
	return "", fmt.Errorf("alias %s: no tty known for a UART compatible with %q", alias, compatible)
}

// dtbTTY returns a tty func for piFirmwareCmdline that reads the aliases
// and compatible strings of the .dtb file with fdtget.
func dtbTTY(ctx context.Context, dtb string) func(alias string) (string, error) {
	return func(alias string) (string, error) {
		node, err := fdtget(ctx, dtb, "/aliases", alias)
		if err != nil {
			return "", err
		}
		compatible, err := fdtget(ctx, dtb, node, "compatible")
		if err != nil {
			return "", err
		}
		return uartTTY(alias, strings.Fields(compatible))
	}
}

// fdtget reads one string (or string list, space-separated) property.
func fdtget(ctx context.Context, dtb, node, prop string) (string, error) {
	out, err := exec.CommandContext(ctx, "fdtget", "-t", "s", dtb, node, prop).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("fdtget %s %s %s: %v: %s", filepath.Base(dtb), node, prop, err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// extractBootFiles copies files from the image's FAT boot partition into
// dir with mtools, which the image builder itself writes the FAT with.
func extractBootFiles(ctx context.Context, img, dir string, files ...string) error {
	args := []string{"-n", "-i", fmt.Sprintf("%s@@%d", img, builder.BootStart)}
	for _, f := range files {
		args = append(args, "::"+f)
	}
	cmd := exec.CommandContext(ctx, "mcopy", append(args, dir+"/")...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mcopy %s from %s: %v: %s", strings.Join(files, " "), img, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func TestPiFirmwareCmdline(t *testing.T) {
	// The UARTs of bcm2710-rpi-3-b.dtb: config.txt's enable_uart=1 leaves
	// serial0 on the mini UART and serial1 on the PL011 (Bluetooth).
	pi3 := func(alias string) (string, error) {
		switch alias {
		case "serial0":
			return uartTTY(alias, []string{"brcm,bcm2835-aux-uart"})
		case "serial1":
			return uartTTY(alias, []string{"arm,pl011", "arm,primecell"})
		}
		return "", fmt.Errorf("no alias %s", alias)
	}
	for _, tc := range []struct {
		name, bootargs, cmdline, want, wantErr string
	}{
		{
			name:     "serial0 is the mini UART, ttyS0, and the device tree's bootargs come first",
			bootargs: "coherent_pool=1M 8250.nr_uarts=1",
			cmdline:  "console=tty1 console=serial0,115200 rootwait\n",
			want:     "coherent_pool=1M 8250.nr_uarts=1 console=tty1 console=ttyS0,115200 rootwait",
		},
		{
			name:    "serial1 is the PL011, numbered by its alias",
			cmdline: "console=serial1,115200",
			want:    "console=ttyAMA1,115200",
		},
		{
			name:    "a console without options keeps none",
			cmdline: "console=serial0",
			want:    "console=ttyS0",
		},
		{
			name:    "a named tty and look-alike arguments stay as written",
			cmdline: "console=ttyAMA0,115200 kgdboc=serial0 xconsole=serial0",
			want:    "console=ttyAMA0,115200 kgdboc=serial0 xconsole=serial0",
		},
		{
			name:    "an alias the device tree lacks is an error",
			cmdline: "console=serial2,115200",
			wantErr: "console=serial2,115200: no alias serial2",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := piFirmwareCmdline(tc.bootargs, tc.cmdline, pi3)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestUARTTTY(t *testing.T) {
	for _, tc := range []struct {
		alias      string
		compatible []string
		want       string
	}{
		{"serial0", []string{"brcm,bcm2835-aux-uart"}, "ttyS0"},
		{"serial1", []string{"brcm,bcm2835-aux-uart"}, "ttyS0"},
		{"serial0", []string{"arm,pl011", "arm,primecell"}, "ttyAMA0"},
		{"serial1", []string{"arm,pl011", "arm,primecell"}, "ttyAMA1"},
		{"serial0", []string{"snps,dw-apb-uart"}, ""},
		{"uart0", []string{"arm,pl011"}, ""},
		{"serialx", []string{"arm,pl011"}, ""},
	} {
		got, err := uartTTY(tc.alias, tc.compatible)
		if tc.want == "" {
			if err == nil {
				t.Errorf("uartTTY(%s, %q) = %q, want an error", tc.alias, tc.compatible, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("uartTTY(%s, %q) = %q, %v, want %q", tc.alias, tc.compatible, got, err, tc.want)
		}
	}
}
