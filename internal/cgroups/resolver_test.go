package cgroups

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestResolveRealCgroup: a process moved into a cgroup made here, named like a containerd scope
// in a pod's slice, is resolved from its id (the directory's inode, as the kernel gives it) to
// that path, container and pod, first through /proc/<pid>/cgroup and, once the process and its
// /proc entry are gone, by walking the hierarchy.
func TestResolveRealCgroup(t *testing.T) {
	r, err := NewResolver()
	if err != nil {
		t.Fatal(err)
	}
	const id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	const uid = "11111111-2222-3333-4444-555555555555"
	top := fmt.Sprintf("/receiver-test-%d.slice", os.Getpid())
	rel := top + "/kubepods-besteffort-pod" + strings.ReplaceAll(uid, "-", "_") + ".slice/cri-containerd-" + id + ".scope"
	dir := filepath.Join(r.Root(), rel)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("make a test cgroup under %s: %v", r.Root(), err)
	}
	t.Cleanup(func() { // leaves first: rmdir is how cgroups are removed
		for p := dir; p != filepath.Dir(filepath.Join(r.Root(), top)); p = filepath.Dir(p) {
			if err := os.Remove(p); err != nil {
				t.Errorf("remove test cgroup: %v", err)
			}
		}
	})
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	cgid := ino(dir)
	want := Info{Path: rel, ContainerID: id, PodUID: uid}
	if got := r.Resolve(cgid, uint32(pid)); got != want || r.Walks() != 0 {
		t.Errorf("through /proc: %+v (walks %d), want %+v", got, r.Walks(), want)
	}
	cmd.Process.Kill()
	cmd.Wait()

	fresh := &Resolver{root: r.root, cache: map[uint64]Info{}}
	if got := fresh.Resolve(cgid, uint32(pid)); got != want || fresh.Walks() != 1 {
		t.Errorf("by walking: %+v (walks %d), want %+v", got, fresh.Walks(), want)
	}
	if got := fresh.Resolve(cgid, 0); got != want || fresh.Walks() != 1 {
		t.Errorf("cached: %+v (walks %d)", got, fresh.Walks())
	}
	if got := fresh.Resolve(1<<62, 0); got != (Info{}) || fresh.Walks() != 2 {
		t.Errorf("unknown id: %+v (walks %d)", got, fresh.Walks())
	}
}
