package targetkernel

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// The archive is newc: every entry starts 4-byte aligned with the magic,
// the file's bytes follow its name, /dev/console is a character device
// 5:1, and the trailer ends it.
func TestWriteCPIO(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "jool"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "init"), []byte("#!init"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "initrd.cpio")
	if err := WriteCPIO(path, root); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]uint64{} // name → mode
	for off := 0; off < len(b); {
		if off%4 != 0 || !bytes.HasPrefix(b[off:], []byte("070701")) {
			t.Fatalf("no newc header at offset %d", off)
		}
		field := func(i int) uint64 {
			v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				t.Fatalf("header field %d at %d: %v", i, off, err)
			}
			return v
		}
		mode, size, nameLen := field(1), int(field(6)), int(field(11))
		name := string(b[off+110 : off+110+nameLen-1])
		names[name] = mode
		data := off + 110 + nameLen
		data += (4 - data%4) % 4
		if name == "init" && string(b[data:data+size]) != "#!init" {
			t.Errorf("init holds %q", b[data:data+size])
		}
		if name == "dev/console" && (field(9) != 5 || field(10) != 1) {
			t.Errorf("dev/console is %d:%d, want 5:1", field(9), field(10))
		}
		if name == "TRAILER!!!" {
			break
		}
		off = data + size
		off += (4 - off%4) % 4
	}
	for _, want := range []string{"jool", "init", "dev/console", "TRAILER!!!"} {
		if _, ok := names[want]; !ok {
			t.Errorf("%s missing from the archive (have %v)", want, names)
		}
	}
}

// The kernel hands init the words before "--" as its environment and the
// rest as its arguments: the tests run verbosely and once, benchmarks
// instead of the tests run once each.
func TestCmdline(t *testing.T) {
	for _, c := range []struct {
		name string
		o    Options
		want string
	}{
		{"all tests", Options{}, "-- -test.v -test.count=1"},
		{"skip", Options{Skip: "^TestNetns"}, "-- -test.v -test.count=1 -test.skip=^TestNetns"},
		{"run", Options{Run: "^TestProgramVerdicts$"}, "-- -test.v -test.count=1 -test.run=^TestProgramVerdicts$"},
		{"bench", Options{Bench: "^BenchmarkPacketCost$"}, "-- -test.run=^$ -test.bench=^BenchmarkPacketCost$ -test.benchtime=1x"},
		{"environment", Options{Env: []string{"A=/a", "B=b"}, Skip: "x"}, "A=/a B=b -- -test.v -test.count=1 -test.skip=x"},
	} {
		if got := c.o.cmdline(); got != c.want {
			t.Errorf("%s: cmdline %q, want %q", c.name, got, c.want)
		}
	}
}
