package bpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// BPFFSRoot is where bpffs is conventionally mounted, and where MountBPFFS mounts it.
const BPFFSRoot = "/sys/fs/bpf"

// MountBPFFS makes sure dir can hold pins: it mounts bpffs at /sys/fs/bpf when dir lies under it
// and nothing is mounted there yet (a fresh VM; INFRA.md), then creates dir. Pins only live on a
// bpffs, so any other dir is refused with what to do.
func MountBPFFS(dir string) error {
	dir = filepath.Clean(dir)
	if isUnder(dir, BPFFSRoot) && !onBPFFS(BPFFSRoot) {
		if err := os.MkdirAll(BPFFSRoot, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", BPFFSRoot, err)
		}
		if err := unix.Mount("bpf", BPFFSRoot, "bpf", 0, "mode=0700"); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount bpffs at %s: %w (hint: mount -t bpf bpf %s)", BPFFSRoot, err, BPFFSRoot)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create pin directory %s: %w", dir, err)
	}
	if !onBPFFS(dir) {
		return fmt.Errorf("pin directory %s is not on a bpffs (hint: mount -t bpf bpf DIR, or use a directory under %s)", dir, BPFFSRoot)
	}
	return nil
}

// isUnder reports whether path is root or inside it (both clean).
func isUnder(path, root string) bool {
	return path == root || strings.HasPrefix(path, root+"/")
}

func onBPFFS(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && uint32(st.Type) == unix.BPF_FS_MAGIC
}

// ErrPinDirInUse: another process holds LockPinDir's lock.
var ErrPinDirInUse = errors.New("pin directory in use by another collector")

// LockPinDir takes an exclusive lock on pin directory dir (MountBPFFS first), so that two
// collectors never read one ring: the second is refused. The lock is a flock on the directory
// itself, which dies with its holder and needs no writable file system elsewhere.
func LockPinDir(dir string) (unlock func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("lock pin directory: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", dir, ErrPinDirInUse)
		}
		return nil, fmt.Errorf("lock pin directory %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}
