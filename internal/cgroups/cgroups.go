// Package cgroups names a cgroup v2 id (what bpf_get_current_cgroup_id returns: the inode of
// the cgroup's directory) by its path, and reads the container id and Kubernetes pod uid that
// container runtimes write into that path. The collector resolves each receiving process's
// cgroup once and caches it (issue 19).
package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Info is what a cgroup id names.
type Info struct {
	Path        string // under the cgroup2 mount, from "/" ("" when not found)
	ContainerID string // 64 hex digits, "" when the path names no container
	PodUID      string // Kubernetes pod uid (with dashes), "" when it names no pod
}

// maxCached bounds the cache: cgroups come and go on a busy node; once it holds this many the
// cache starts again empty (a lookup costs one stat, or a walk of the hierarchy when the process
// is gone).
const maxCached = 1 << 16

// Resolver turns cgroup ids into Info, caching every answer (also "not found", so an id whose
// cgroup is gone costs one walk, not one per flow).
type Resolver struct {
	root string // the cgroup2 mount point

	mu    sync.Mutex
	cache map[uint64]Info
	walks int // hierarchy walks done (a cache miss whose process is gone)
}

// NewResolver finds the cgroup2 mount in /proc/self/mountinfo (/sys/fs/cgroup on unified hosts,
// /sys/fs/cgroup/unified on hybrid ones).
func NewResolver() (*Resolver, error) {
	root, err := cgroup2Mount("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return &Resolver{root: root, cache: map[uint64]Info{}}, nil
}

// Root is the cgroup2 mount point the resolver reads.
func (r *Resolver) Root() string { return r.root }

// Walks is how many times the resolver walked the hierarchy for an id.
func (r *Resolver) Walks() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.walks
}

func cgroup2Mount(mountinfo string) (string, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return "", fmt.Errorf("find the cgroup2 mount: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok || !strings.HasPrefix(post, "cgroup2 ") {
			continue
		}
		if f := strings.Fields(pre); len(f) >= 5 {
			return unescapeMount(f[4]), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("find the cgroup2 mount: %w", err)
	}
	return "", errors.New("no cgroup2 file system is mounted (cgroup ids cannot be named)")
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Resolve names cgroup id, which process pid was in when the kernel saw it: first from
// /proc/<pid>/cgroup, confirmed by the inode of that directory (the process may have moved or
// its pid been reused), else by walking the hierarchy for the directory with that inode.
func (r *Resolver) Resolve(id uint64, pid uint32) Info {
	r.mu.Lock()
	defer r.mu.Unlock()
	if in, ok := r.cache[id]; ok {
		return in
	}
	if len(r.cache) >= maxCached {
		clear(r.cache)
	}
	path, ok := r.fromProc(id, pid)
	if !ok {
		r.walks++
		path = r.walk(id)
	}
	in := Info{Path: path}
	in.ContainerID, in.PodUID = Parse(path)
	r.cache[id] = in
	return in
}

// fromProc reads the process's cgroup v2 path ("0::/path") and checks its inode is id.
func (r *Resolver) fromProc(id uint64, pid uint32) (string, bool) {
	if pid == 0 {
		return "", false
	}
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(pid), 10) + "/cgroup")
	if err != nil {
		return "", false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			p = strings.TrimSuffix(p, " (deleted)")
			if ino(filepath.Join(r.root, p)) == id {
				return p, true
			}
		}
	}
	return "", false
}

// walk looks for the directory whose inode is id (a cgroup's id is its kernfs inode).
func (r *Resolver) walk(id uint64) string {
	found := ""
	_ = filepath.WalkDir(r.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil // a cgroup removed during the walk: skip it
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		rel := "/" + strings.TrimPrefix(strings.TrimPrefix(p, r.root), "/")
		if st.Ino == id {
			found = rel
			return filepath.SkipAll
		}
		return nil
	})
	return found
}

func ino(p string) uint64 {
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		return 0
	}
	return st.Ino
}
