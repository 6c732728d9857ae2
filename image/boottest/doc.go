// Package boottest boots the appliance images in qemu and checks them in
// the lab: the qemu-amd64 image in qemu-system-x86_64 (boot_test.go) and
// the rpi3 image in qemu-system-aarch64's raspi3b machine (pi_test.go).
// Both run with GIZMO_SLOW=1 as root.
package boottest
