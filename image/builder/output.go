package builder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"codeberg.org/monostack/gizmo/hardware"
)

// syslinuxMBR is syslinux's MBR boot code: it loads the volume boot record
// of the active MBR partition (the FAT), which syslinux --install wrote.
const syslinuxMBR = syslinuxDir + "/mbr/mbr.bin"

// WriteImage assembles the parts into a disk image at out. A regular file is
// written next to out under a temporary name and renamed into place only
// when complete, so a failure never leaves a half-written image. A block
// device is written in place, with /perm stretched to its end.
func WriteImage(ctx context.Context, p *Parts, out string) (Result, error) {
	res, err := writeImage(ctx, p, out)
	if err != nil {
		return Result{}, fmt.Errorf("image: %s: %w", out, err)
	}
	return res, nil
}

func writeImage(ctx context.Context, p *Parts, out string) (Result, error) {
	layout := p.Layout
	var bootCode []byte
	if p.Board.Boot == hardware.BootSyslinuxBIOS {
		b, err := os.ReadFile(syslinuxMBR)
		if err != nil {
			return Result{}, fmt.Errorf("syslinux MBR boot code: %w (install Debian's syslinux-common)", err)
		}
		bootCode = b
	}

	if fi, err := os.Stat(out); err == nil && fi.Mode()&os.ModeDevice != 0 {
		f, err := os.OpenFile(out, os.O_RDWR|os.O_EXCL, 0)
		if err != nil {
			return Result{}, err
		}
		defer f.Close()
		size, err := deviceSize(f)
		if err != nil {
			return Result{}, err
		}
		if layout, err = layout.ForDevice(size); err != nil {
			return Result{}, err
		}
		if err := assemble(ctx, f, p, layout, bootCode, false); err != nil {
			return Result{}, err
		}
		return Result{ImageSize: layout.DiskSize, RootSize: p.RootSize, Layout: layout}, f.Close()
	}

	dir := filepath.Dir(out)
	if err := checkRoom(dir, layout, p.RootSize); err != nil {
		return Result{}, err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(out)+".tmp-")
	if err != nil {
		return Result{}, err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Truncate(layout.DiskSize); err != nil {
		return Result{}, err
	}
	if err := assemble(ctx, tmp, p, layout, bootCode, true); err != nil {
		return Result{}, err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return Result{}, err
	}
	if err := tmp.Close(); err != nil {
		return Result{}, err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return Result{}, err
	}
	ok = true
	return Result{ImageSize: layout.DiskSize, RootSize: p.RootSize, Layout: layout}, nil
}

// estimatedRootSize is what preflight assumes before the root exists.
const estimatedRootSize = 64 * mib

// preflight checks that out can take an image with this layout: a block
// device must be large enough, a file's directory must exist and have room.
func preflight(out string, l Layout) error {
	fi, err := os.Stat(out)
	if err == nil && fi.Mode()&os.ModeDevice != 0 {
		f, err := os.Open(out)
		if err != nil {
			return err
		}
		defer f.Close()
		size, err := deviceSize(f)
		if err != nil {
			return err
		}
		_, err = l.ForDevice(size)
		return err
	}
	if err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("is a %v, not a file or block device", fi.Mode().Type())
	}
	dir := filepath.Dir(out)
	if di, err := os.Stat(dir); err != nil {
		return err
	} else if !di.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return checkRoom(dir, l, estimatedRootSize)
}

// assemble writes partition tables, boot FAT, root A and /perm into f.
func assemble(ctx context.Context, f *os.File, p *Parts, l Layout, bootCode []byte, sparse bool) error {
	if err := l.writePartitionTables(f, bootCode); err != nil {
		return err
	}
	if _, err := copyInto(f, BootStart, p.Boot, BootSize, sparse); err != nil {
		return fmt.Errorf("boot partition: %w", err)
	}
	if _, err := copyInto(f, Root2, p.Root, RootSize, sparse); err != nil {
		return fmt.Errorf("root partition: %w", err)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := mkfsExt4(ctx, f.Name(), l, p.Epoch); err != nil {
		return err
	}
	return f.Sync()
}

// checkRoom fails early, with a clear message, when the image cannot be
// written: the file size limit (ulimit -f) is below the image size, or the
// file system lacks room for the blocks the sparse image allocates.
func checkRoom(dir string, l Layout, rootSize int64) error {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &rl); err == nil && rl.Cur != unix.RLIM_INFINITY && rl.Cur < uint64(l.DiskSize) {
		return fmt.Errorf("the file size limit (ulimit -f) is %d MiB, the image is %d MiB", rl.Cur/mib, l.DiskSize/mib)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return err
	}
	// Allocated blocks: the whole FAT in the worst case, the root, and the
	// ext4 metadata (inode tables, journal: about a tenth of /perm).
	need := int64(BootSize) + rootSize + l.PermSize/10 + 8*mib
	if avail := int64(st.Bavail) * int64(st.Bsize); avail < need {
		return fmt.Errorf("not enough space in %s: the image needs about %d MiB, %d MiB are free", dir, need/mib, avail/mib)
	}
	return nil
}

// deviceSize returns a block device's size (BLKGETSIZE64).
func deviceSize(f *os.File) (int64, error) {
	n, err := unix.IoctlGetUint64(int(f.Fd()), unix.BLKGETSIZE64)
	if err != nil {
		return 0, fmt.Errorf("size of block device: %w", err)
	}
	return int64(n), nil
}
