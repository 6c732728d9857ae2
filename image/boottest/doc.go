// Package boottest boots the qemu-amd64 image in qemu-system-x86_64 and
// checks it in the lab (see boot_test.go; it runs with GIZMO_SLOW=1 as root).
package boottest
