package hardware

import (
	"strings"
	"testing"
)

func TestLookupAliases(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"rpi4", "rpi4"},
		{"RPI4", "rpi4"},
		{"apu3", "apu2"},
		{"apu4", "apu2"},
		{" qemu-amd64 ", "qemu-amd64"},
	} {
		b, err := Lookup(tc.in)
		if err != nil {
			t.Fatalf("Lookup(%q): %v", tc.in, err)
		}
		if b.Name != tc.want {
			t.Errorf("Lookup(%q).Name = %q, want %q", tc.in, b.Name, tc.want)
		}
	}
}

func TestLookupUnknownListsBoards(t *testing.T) {
	_, err := Lookup("rpi2")
	if err == nil {
		t.Fatal("Lookup(rpi2) succeeded")
	}
	for _, n := range []string{"rpi3", "rpi4", "rpi5", "zero2w", "apu2", "qemu-amd64"} {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("error %q does not list %s", err, n)
		}
	}
}

func TestProfilesAreComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, b := range All() {
		for _, n := range append([]string{b.Name}, b.Aliases...) {
			if seen[n] {
				t.Errorf("board name %q used twice", n)
			}
			seen[n] = true
		}
		if b.GOARCH != "arm64" && b.GOARCH != "amd64" {
			t.Errorf("%s: GOARCH %q", b.Name, b.GOARCH)
		}
		if b.KernelModule == "" {
			t.Errorf("%s: no kernel module", b.Name)
		}
		if b.SerialConsole == "" || b.Watchdog == "" {
			t.Errorf("%s: serial console %q, watchdog %q", b.Name, b.SerialConsole, b.Watchdog)
		}
		if _, ok := b.WAN(); !ok {
			t.Errorf("%s: no NIC has the WAN role", b.Name)
		}
		var lan bool
		for _, n := range b.NICs {
			lan = lan || n.Role == RoleLAN
		}
		if !lan {
			t.Errorf("%s: no NIC has the LAN role", b.Name)
		}
		switch b.Boot {
		case BootRaspberryPi:
			if b.GOARCH != "arm64" || b.FirmwareModule == "" || len(b.DeviceTrees) == 0 {
				t.Errorf("%s: Pi profile without arm64, firmware module or device trees", b.Name)
			}
			if b.EEPROM != (b.EEPROMModule != "") {
				t.Errorf("%s: EEPROM %v but module %q", b.Name, b.EEPROM, b.EEPROMModule)
			}
		case BootSyslinuxBIOS:
			if b.GOARCH != "amd64" {
				t.Errorf("%s: BIOS boot needs amd64", b.Name)
			}
		default:
			t.Errorf("%s: boot method %v", b.Name, b.Boot)
		}
	}
}

func TestAPUHasThreePorts(t *testing.T) {
	b, err := Lookup("apu2")
	if err != nil {
		t.Fatal(err)
	}
	var fixed int
	for _, n := range b.NICs {
		if !n.Optional {
			fixed++
		}
	}
	if fixed != 3 {
		t.Errorf("apu2 has %d fixed ports, want 3", fixed)
	}
}

func TestCmdlineSerialLast(t *testing.T) {
	b, _ := Lookup("rpi4")
	args := b.Cmdline()
	if len(args) == 0 || args[len(args)-1] != "console=serial0,115200" {
		t.Errorf("rpi4 Cmdline() = %q, want the serial console last", args)
	}
}

func TestAllReturnsCopies(t *testing.T) {
	a := All()
	a[0].NICs[0].Name = "changed"
	if All()[0].NICs[0].Name == "changed" {
		t.Error("All() exposes the package's table")
	}
}
