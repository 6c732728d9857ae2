// Package hardware describes the boards the gizmo image runs on: which CPU
// architecture to compile for, which gokrazy kernel, firmware and EEPROM
// modules to take the boot files from, how the board boots, where its serial
// console is, which Ethernet ports it has and which watchdog keeps it alive.
//
// The profiles are plain values. The image builder (codeberg.org/monostack/
// gizmo/image/builder) turns one into a disk image; docs/boards.md explains
// them to people.
package hardware

import (
	"fmt"
	"slices"
	"strings"
)

// BootMethod says how the board's firmware finds and starts the kernel.
type BootMethod int

const (
	// BootRaspberryPi: the SoC's boot ROM (or the Pi 4/5 EEPROM bootloader)
	// reads the first FAT partition listed in the MBR and loads start*.elf,
	// config.txt, the device tree and the kernel named in config.txt, which
	// gets cmdline.txt as its command line.
	BootRaspberryPi BootMethod = iota + 1
	// BootSyslinuxBIOS: a legacy BIOS (SeaBIOS on coreboot for the APU, and
	// in qemu) runs the MBR boot code, which chains to the active partition's
	// volume boot record; syslinux there loads the kernel and its command
	// line from the FAT boot partition.
	BootSyslinuxBIOS
)

func (m BootMethod) String() string {
	switch m {
	case BootRaspberryPi:
		return "raspberrypi"
	case BootSyslinuxBIOS:
		return "syslinux-bios"
	}
	return fmt.Sprintf("BootMethod(%d)", int(m))
}

// Role is the default job of an Ethernet port. The gizmo detects roles at run
// time (the port that hears an upstream router becomes the WAN, see
// services/roles); the profile's role is where a person should plug in the
// uplink cable so that the labels on the case and the docs agree.
type Role string

const (
	RoleWAN Role = "wan"
	RoleLAN Role = "lan"
)

// NIC is one Ethernet port as the kernel names it. gokrazy has no udev, so
// the names are the kernel's ethN in probe order.
type NIC struct {
	Name   string // kernel name, e.g. "eth0"
	Label  string // what a person sees on the case, e.g. "built-in RJ45"
	Driver string // kernel driver, e.g. "igb", "r8152"
	Role   Role
	// Optional ports only exist when the user plugs in a USB adapter.
	Optional bool
}

// Board is one hardware profile.
type Board struct {
	Name        string   // the -board value, e.g. "rpi4"
	Aliases     []string // other -board values that select this profile
	Description string
	GOARCH      string // "arm64" or "amd64"
	Boot        BootMethod

	// Go modules holding the boot files (see github.com/gokrazy/kernel.rpi
	// and friends). Empty means the board needs none from that module.
	KernelModule   string
	FirmwareModule string
	EEPROMModule   string

	// FirmwareFiles are the files from FirmwareModule that the boot ROM
	// loads for this board, copied to the root of the FAT partition.
	FirmwareFiles []string
	// DeviceTrees are the .dtb files from KernelModule that the firmware
	// picks from by board revision; the kernel module's overlays/ directory
	// is copied as well when it exists.
	DeviceTrees []string
	// EEPROM is true for boards whose SPI EEPROM bootloader is updated from
	// the boot partition (recovery.bin + pieeprom.upd + pieeprom.sig).
	EEPROM bool

	// SerialConsole is the kernel console= value for the serial port, the
	// last console= on the command line, so that it becomes /dev/console
	// and gokrazy's init logs there.
	SerialConsole string
	// ExtraConsoles come before SerialConsole (e.g. tty1 for HDMI).
	ExtraConsoles []string
	// ConfigTxt holds extra Raspberry Pi config.txt lines for this board.
	ConfigTxt []string

	NICs []NIC

	// Watchdog names the hardware watchdog driver; gokrazy's init opens
	// /dev/watchdog and pings it every second, so a hung kernel reboots.
	Watchdog string
}

// Cmdline returns the board's console= arguments in kernel order.
func (b Board) Cmdline() []string {
	var args []string
	for _, c := range b.ExtraConsoles {
		args = append(args, "console="+c)
	}
	if b.SerialConsole != "" {
		args = append(args, "console="+b.SerialConsole)
	}
	return args
}

// WAN returns the port that the profile suggests for the uplink.
func (b Board) WAN() (NIC, bool) {
	for _, n := range b.NICs {
		if n.Role == RoleWAN {
			return n, true
		}
	}
	return NIC{}, false
}

const (
	kernelRPi   = "github.com/gokrazy/kernel.rpi"
	kernelAMD64 = "github.com/gokrazy/kernel.amd64"
	firmwareRPi = "github.com/gokrazy/firmware"
	eepromRPi   = "github.com/gokrazy/rpi-eeprom"
)

// The Pi 3 generation (BCM2710/2837) and the Zero 2 W boot with bootcode.bin
// from the FAT; the Pi 4 and 5 have the bootloader in EEPROM.
var pi3Firmware = []string{"bootcode.bin", "start.elf", "fixup.dat"}

// usbNIC is the second Pi port: a USB 3 Gigabit adapter. The kernel has the
// drivers for the common chips (RTL8152/8153 and Microchip LAN78xx).
func usbNIC(name string) NIC {
	return NIC{Name: name, Label: "USB Ethernet adapter (RTL8152/8153 or LAN78xx)", Driver: "r8152 or lan78xx", Role: RoleLAN, Optional: true}
}

// piMiniUART is the config.txt line for the serial console of the Pis
// before the 5: they route the PL011 UART to Bluetooth, and enable_uart=1
// puts the mini UART on GPIO 14/15 with a fixed core clock, which the
// firmware names serial0 on the command line.
const piMiniUART = "enable_uart=1"

// raspberryPi is the profile of a Raspberry Pi model: what every Pi
// shares (arm64, the firmware's own boot, the Pi kernel and firmware, a
// console on the HDMI screen besides the serial one, the Broadcom watchdog,
// a USB adapter as the LAN port eth1) around the model's own fields in b
// and its WAN port eth0. A model that names no serial console gets the
// mini UART on GPIO 14/15, see piMiniUART.
func raspberryPi(b Board, eth0 NIC) Board {
	if b.SerialConsole == "" {
		b.ConfigTxt = append(b.ConfigTxt, piMiniUART)
		b.SerialConsole = "serial0,115200"
	}
	b.GOARCH = "arm64"
	b.Boot = BootRaspberryPi
	b.KernelModule = kernelRPi
	b.FirmwareModule = firmwareRPi
	b.ExtraConsoles = []string{"tty1"}
	b.NICs = []NIC{eth0, usbNIC("eth1")}
	b.Watchdog = "bcm2835_wdt"
	return b
}

// pcBIOS is the profile of an amd64 PC that boots syslinux from its BIOS
// (SeaBIOS), with the serial console on COM1 at 115200 8N1, around the
// board's own fields in b.
func pcBIOS(b Board) Board {
	b.GOARCH = "amd64"
	b.Boot = BootSyslinuxBIOS
	b.KernelModule = kernelAMD64
	b.SerialConsole = "ttyS0,115200"
	return b
}

var boards = []Board{
	raspberryPi(Board{
		Name:          "rpi3",
		Description:   "Raspberry Pi 3 Model B / B+ / A+",
		FirmwareFiles: pi3Firmware,
		DeviceTrees: []string{
			"bcm2710-rpi-3-b.dtb", "bcm2710-rpi-3-b-plus.dtb",
			"bcm2837-rpi-3-a-plus.dtb", "bcm2837-rpi-3-b.dtb", "bcm2837-rpi-3-b-plus.dtb",
		},
	}, NIC{Name: "eth0", Label: "built-in RJ45 (USB-attached)", Driver: "smsc95xx (3B) or lan78xx (3B+)", Role: RoleWAN}),
	raspberryPi(Board{
		Name:          "rpi4",
		Description:   "Raspberry Pi 4 Model B, Pi 400, CM4",
		EEPROMModule:  eepromRPi,
		EEPROM:        true,
		FirmwareFiles: []string{"start4.elf", "fixup4.dat"},
		DeviceTrees: []string{
			"bcm2711-rpi-4-b.dtb", "bcm2711-rpi-400.dtb", "bcm2711-rpi-cm4.dtb", "bcm2711-rpi-cm4-io.dtb", "bcm2711-rpi-cm4s.dtb",
		},
	}, NIC{Name: "eth0", Label: "built-in RJ45", Driver: "bcmgenet", Role: RoleWAN}),
	raspberryPi(Board{
		Name:        "rpi5",
		Description: "Raspberry Pi 5, Pi 500, CM5",
		// The Pi 5 keeps start.elf's job in its EEPROM bootloader: the FAT
		// only needs config.txt, the device tree and the kernel. The
		// rpi-eeprom module carries BCM2711 (Pi 4) images only, so the Pi 5
		// EEPROM is left alone.
		DeviceTrees: []string{
			"bcm2712-rpi-5-b.dtb", "bcm2712d0-rpi-5-b.dtb", "bcm2712-d-rpi-5-b.dtb", "bcm2712-rpi-500.dtb",
			"bcm2712-rpi-cm5-cm5io.dtb", "bcm2712-rpi-cm5-cm4io.dtb", "bcm2712-rpi-cm5l-cm5io.dtb", "bcm2712-rpi-cm5l-cm4io.dtb",
		},
		// The Pi 5's 3-pin debug header (between the HDMI ports) is
		// ttyAMA10; it needs no config.txt change.
		SerialConsole: "ttyAMA10,115200",
	}, NIC{Name: "eth0", Label: "built-in RJ45", Driver: "macb (RP1)", Role: RoleWAN}),
	// The Zero 2 W has no Ethernet: both ports are USB adapters on a hub at
	// the OTG port, named in the order the kernel probes them.
	raspberryPi(Board{
		Name:          "zero2w",
		Description:   "Raspberry Pi Zero 2 W (Ethernet only through USB adapters)",
		FirmwareFiles: pi3Firmware,
		DeviceTrees:   []string{"bcm2710-rpi-zero-2-w.dtb", "bcm2710-rpi-zero-2.dtb", "bcm2837-rpi-zero-2-w.dtb"},
	}, NIC{Name: "eth0", Label: "first USB Ethernet adapter", Driver: "r8152 or lan78xx", Role: RoleWAN}),
	pcBIOS(Board{
		Name:        "apu2",
		Aliases:     []string{"apu3", "apu4"},
		Description: "PC Engines APU2/APU3/APU4 (coreboot + SeaBIOS, 3 or 4 Intel i210/i211 ports)",
		// The DB9 serial port is COM1 at 115200 8N1, the same speed
		// coreboot and SeaBIOS use, so one terminal sees everything.
		NICs: []NIC{
			{Name: "eth0", Label: "port next to the serial connector (enp1s0)", Driver: "igb", Role: RoleWAN},
			{Name: "eth1", Label: "middle port (enp2s0)", Driver: "igb", Role: RoleLAN},
			{Name: "eth2", Label: "port next to the USB connectors (enp3s0)", Driver: "igb", Role: RoleLAN},
			{Name: "eth3", Label: "fourth port, APU4 only (enp4s0)", Driver: "igb", Role: RoleLAN, Optional: true},
		},
		Watchdog: "sp5100_tco",
	}),
	pcBIOS(Board{
		Name:        "qemu-amd64",
		Description: "qemu-system-x86_64 with SeaBIOS and virtio NICs (for tests)",
		NICs: []NIC{
			{Name: "eth0", Label: "first -netdev (virtio-net)", Driver: "virtio_net", Role: RoleWAN},
			{Name: "eth1", Label: "second -netdev (virtio-net)", Driver: "virtio_net", Role: RoleLAN},
		},
		Watchdog: "i6300esb (qemu -device i6300esb)",
	}),
}

// All returns every profile, in the order docs/boards.md lists them.
func All() []Board {
	out := make([]Board, len(boards))
	for i, b := range boards {
		out[i] = clone(b)
	}
	return out
}

// Names returns every accepted -board value, aliases included, sorted.
func Names() []string {
	var names []string
	for _, b := range boards {
		names = append(names, b.Name)
		names = append(names, b.Aliases...)
	}
	slices.Sort(names)
	return names
}

// Lookup returns the profile for a -board value (case-insensitive).
func Lookup(name string) (Board, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	for _, b := range boards {
		if b.Name == n || slices.Contains(b.Aliases, n) {
			return clone(b), nil
		}
	}
	return Board{}, fmt.Errorf("hardware: unknown board %q (known: %s)", name, strings.Join(Names(), ", "))
}

// clone copies the slices so that callers cannot change the package's table.
func clone(b Board) Board {
	b.Aliases = slices.Clone(b.Aliases)
	b.FirmwareFiles = slices.Clone(b.FirmwareFiles)
	b.DeviceTrees = slices.Clone(b.DeviceTrees)
	b.ExtraConsoles = slices.Clone(b.ExtraConsoles)
	b.ConfigTxt = slices.Clone(b.ConfigTxt)
	b.NICs = slices.Clone(b.NICs)
	return b
}
