package builder

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/diskfs/go-diskfs/partition/mbr"
	"github.com/google/uuid"
)

// The gokrazy disk layout (github.com/gokrazy/gokrazy#sd-card-contents):
// p1 FAT boot at LBA 8192 (4 MiB, the SD card erase-block alignment), p2 and
// p3 the A/B root file systems, p4 /perm filling the rest.
const (
	sectorSize = 512
	mib        = 1 << 20

	BootStart = 8192 * sectorSize
	BootSize  = 100 * mib
	RootSize  = 500 * mib
	Root2     = BootStart + BootSize
	Root3     = Root2 + RootSize
	PermStart = Root3 + RootSize

	// DefaultPermSize is /perm's size in an image file; writing to a block
	// device uses the whole device instead.
	DefaultPermSize = 256 * mib
	// gptTail is the room the backup GPT needs at the end of the disk
	// (header + 128 entries of 128 bytes = 33 sectors), rounded up to 1 MiB.
	gptTail = 1 * mib
	// MinPermSize keeps /perm large enough for the journal and the state.
	MinPermSize = 32 * mib
)

// Layout is the partition table of one image.
type Layout struct {
	DiskSize     int64
	PermSize     int64
	DiskGUID     string
	PartGUIDs    [4]string // p1..p4
	MBRSignature uint32
}

// uuidNamespace scopes the name-based UUIDs of gizmo images (RFC 9562 §5.5).
var uuidNamespace = uuid.MustParse("5a1c7e0e-9f1b-4c8e-b1c6-67697a6d6f00")

// NewLayout derives the partition UUIDs from the hostname, so that the same
// config gives the same image and cmdline.txt can name the root partition
// before the disk exists.
func NewLayout(hostname string, permSize int64) (Layout, error) {
	if permSize < MinPermSize {
		return Layout{}, fmt.Errorf("/perm of %d MiB is below the minimum of %d MiB", permSize/mib, MinPermSize/mib)
	}
	permSize = permSize / mib * mib
	l := Layout{
		DiskSize: PermStart + permSize + gptTail,
		PermSize: permSize,
		DiskGUID: strings.ToUpper(uuid.NewSHA1(uuidNamespace, []byte(hostname+"/disk")).String()),
	}
	for i := range l.PartGUIDs {
		l.PartGUIDs[i] = strings.ToUpper(uuid.NewSHA1(uuidNamespace, fmt.Appendf(nil, "%s/partition/%d", hostname, i+1)).String())
	}
	sum := sha256.Sum256([]byte(hostname + "/mbr"))
	l.MBRSignature = binary.LittleEndian.Uint32(sum[:4])
	return l, nil
}

// ForDevice stretches /perm to the end of a device of the given size.
func (l Layout) ForDevice(size int64) (Layout, error) {
	perm := (size - PermStart - gptTail) / mib * mib
	if perm < MinPermSize {
		return Layout{}, fmt.Errorf("device holds %d MiB, the image needs at least %d MiB", size/mib, (PermStart+MinPermSize+gptTail)/mib)
	}
	l.PermSize = perm
	l.DiskSize = size
	return l, nil
}

// RootCmdline is the root= argument: the GPT form that the kernel resolves
// as "partition number of p1's PARTUUID + 1" and that gokrazy's rootdev
// package understands (gokrazy reads only p1's GUID and adds PARTNROFF).
// gokrazy's update switch rewrites it to PARTNROFF=2 for p3.
func (l Layout) RootCmdline() string {
	return "root=PARTUUID=" + strings.ToLower(l.PartGUIDs[0]) + "/PARTNROFF=1"
}

func (l Layout) gptTable() *gpt.Table {
	lba := func(b int64) uint64 { return uint64(b / sectorSize) }
	part := func(i int, start, size int64, typ gpt.Type, name string) *gpt.Partition {
		return &gpt.Partition{
			Index: i + 1, Start: lba(start), End: lba(start+size) - 1, Size: uint64(size),
			Type: typ, Name: name, GUID: l.PartGUIDs[i],
		}
	}
	boot := part(0, BootStart, BootSize, gpt.MicrosoftBasicData, "boot")
	// UEFI spec §5.3.3: attribute bit 2, "legacy BIOS bootable".
	boot.Attributes = 1 << 2
	return &gpt.Table{
		LogicalSectorSize:  sectorSize,
		PhysicalSectorSize: sectorSize,
		GUID:               l.DiskGUID,
		ProtectiveMBR:      false, // the hybrid MBR below takes its place
		Partitions: []*gpt.Partition{
			boot,
			part(1, Root2, RootSize, gpt.LinuxFilesystem, "root2"),
			part(2, Root3, RootSize, gpt.LinuxFilesystem, "root3"),
			part(3, PermStart, l.PermSize, gpt.LinuxFilesystem, "perm"),
		},
	}
}

// writeHybridMBR writes sector 0: boot code, disk signature and a hybrid
// partition table. Entry 1 is the FAT boot partition, active, so that the
// Raspberry Pi boot ROM (which reads only the MBR) and a BIOS MBR boot loader
// find it. Entry 2 is type 0xEE from LBA 1, which makes Linux treat the disk
// as GPT (block/partitions/efi.c accepts a hybrid MBR whose 0xEE entry
// starts at LBA 1) and so see all four partitions.
func (l Layout) writeHybridMBR(w *os.File, bootCode []byte) error {
	if len(bootCode) > 440 {
		return fmt.Errorf("MBR boot code is %d bytes, at most 440 fit", len(bootCode))
	}
	sector := make([]byte, 446)
	copy(sector, bootCode)
	binary.LittleEndian.PutUint32(sector[440:444], l.MBRSignature)
	if _, err := w.WriteAt(sector, 0); err != nil {
		return err
	}
	// CHS fields hold the "use LBA" maximum 1023/254/63.
	chs := func(p *mbr.Partition) *mbr.Partition {
		p.StartHead, p.StartSector, p.StartCylinder = 0xfe, 0xff, 0xff
		p.EndHead, p.EndSector, p.EndCylinder = 0xfe, 0xff, 0xff
		return p
	}
	t := &mbr.Table{
		LogicalSectorSize:  sectorSize,
		PhysicalSectorSize: sectorSize,
		Partitions: []*mbr.Partition{
			chs(&mbr.Partition{Bootable: true, Type: mbr.Fat32LBA, Start: BootStart / sectorSize, Size: BootSize / sectorSize}),
			chs(&mbr.Partition{Type: mbr.GPTProtective, Start: 1, Size: BootStart/sectorSize - 1}),
		},
	}
	return t.Write(w, l.DiskSize)
}

// writePartitionTables writes the GPT (primary and backup) and the hybrid MBR.
func (l Layout) writePartitionTables(f *os.File, bootCode []byte) error {
	if err := l.gptTable().Write(f, l.DiskSize); err != nil {
		return fmt.Errorf("GPT: %w", err)
	}
	return l.writeHybridMBR(f, bootCode)
}

// copyInto copies the file src into dst at offset. With sparse set (dst is a
// fresh, zero-filled file) all-zero chunks are skipped, which keeps the image
// file sparse and the copy fast.
func copyInto(dst *os.File, offset int64, src string, limit int64, sparse bool) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return 0, err
	}
	if fi.Size() > limit {
		return 0, fmt.Errorf("%s is %d MiB, its partition holds %d MiB", src, fi.Size()/mib, limit/mib)
	}
	buf := make([]byte, 1*mib)
	var done int64
	for {
		n, err := io.ReadFull(in, buf)
		if n > 0 {
			chunk := buf[:n]
			if !sparse || !allZero(chunk) {
				if _, werr := dst.WriteAt(chunk, offset+done); werr != nil {
					return done, werr
				}
			}
			done += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return done, nil
		}
		if err != nil {
			return done, err
		}
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// mkfsExt4 formats /perm inside the image with Debian's mke2fs (e2fsprogs):
// go-diskfs's ext4 writer stamps the current time and random seeds into the
// superblock, and gokrazy's init only mounts /perm, it never formats it.
// E2FSPROGS_FAKE_TIME, -U and hash_seed make the result reproducible.
func mkfsExt4(ctx context.Context, image string, l Layout, epoch time.Time) error {
	bin, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		return errors.New("mkfs.ext4 not found: install Debian's e2fsprogs package (formats /perm)")
	}
	fsUUID := uuid.NewSHA1(uuidNamespace, []byte(l.DiskGUID+"/perm-fs")).String()
	hashSeed := uuid.NewSHA1(uuidNamespace, []byte(l.DiskGUID+"/perm-hash")).String()
	cmd := exec.CommandContext(ctx, bin, "-q", "-F", "-L", "perm", "-U", fsUUID,
		"-E", strings.Join([]string{
			"offset=" + strconv.FormatInt(PermStart, 10),
			"hash_seed=" + hashSeed,
			"root_owner=0:0",
			"nodiscard",
			"lazy_itable_init=0",
			"lazy_journal_init=0",
		}, ","),
		image, strconv.FormatInt(l.PermSize/1024, 10)+"k")
	cmd.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME="+strconv.FormatInt(epoch.Unix(), 10))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("mkfs.ext4: %v: %s", err, strings.TrimSpace(out.String()))
	}
	return nil
}
