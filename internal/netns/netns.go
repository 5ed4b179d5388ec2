// Package netns runs code inside a named network namespace (the ones `ip netns add` makes under
// /run/netns). The collector uses it to attach to an interface that lives in another namespace
// — a container's, or a demo's — while it keeps talking to Kafka from its own.
package netns

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs fn on an OS thread switched into network namespace name, for calls that act on "the
// current namespace" (resolving or attaching to an interface by index, opening sockets). Kernel
// objects fn creates (BPF links, sockets) stay bound to that namespace after Do returns. The
// thread goes back to the Go scheduler only if it could be switched back; otherwise it dies with
// its goroutine. name "" runs fn in the current namespace.
func Do(name string, fn func() error) error {
	if name == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open(filepath.Join("/run/netns", name))
		if err != nil {
			errc <- fmt.Errorf("open network namespace %s: %w (`ip netns list` shows them)", name, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter network namespace %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("leave network namespace %s: %w (after fn: %v)", name, err, ferr)
			return // thread stays locked: Go discards it when this goroutine exits
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
