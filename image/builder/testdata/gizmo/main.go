// Command gizmo is a stand-in for the real daemon in the builder's
// structural tests: it keeps those tests independent of the daemon's
// in-progress code while still giving the image a /user/gizmo to check.
package main

import (
	"log"
	"time"
)

func main() {
	log.Print("gizmo test stand-in started")
	for {
		time.Sleep(time.Hour)
	}
}
