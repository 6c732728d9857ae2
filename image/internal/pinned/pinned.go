// Package pinned imports every module the image builder takes by name and
// that no other Go file imports: gokrazy, whose package the generated init
// (compiled through `go build -overlay`, so it is never on disk) imports, and
// the kernel, firmware and EEPROM modules, whose files the builder copies
// out of the module cache (`go mod download -json MODULE`).
//
// Because this package imports them, go.mod requires them directly and
// `go mod tidy` keeps them, their go.sum lines and the modules gokrazy needs
// to compile. The kernel, firmware and EEPROM modules are empty Go packages
// made for exactly this. Nothing links this package; `go build ./...` and
// `go vet ./...` compile it, which shows the pins resolve.
package pinned

import (
	// The generated init's supervisor and update API.
	_ "github.com/gokrazy/gokrazy"

	// Boot-file modules of the boards in codeberg.org/monostack/gizmo/hardware.
	_ "github.com/gokrazy/firmware"
	_ "github.com/gokrazy/kernel.amd64"
	_ "github.com/gokrazy/kernel.rpi"
	_ "github.com/gokrazy/rpi-eeprom"
)
