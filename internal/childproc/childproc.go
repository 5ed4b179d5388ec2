// Package childproc starts child processes that are killed when this process dies, and only
// then.
//
// Linux's parent-death signal (SysProcAttr.Pdeathsig) is sent when the THREAD that forked the
// child exits, not when the process does (go.dev/issue/27505). The Go runtime ends a thread
// whenever a goroutine that locked it returns still locked, which packetlake does on purpose
// (netns.Do when it cannot switch a thread back, bpf's Flush, which pins threads to CPUs). A
// child forked from a thread that later ran such a goroutine got SIGKILL at a random moment
// while this process ran on: the "stalled" ingesters of the scale-out test were such children,
// killed the moment the collectors attached in their namespaces.
//
// Start forks from a thread locked for the purpose and keeps it alive, blocked on the child's
// pidfd, until the child has exited.
package childproc

import (
	"fmt"
	"os/exec"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// Start starts cmd with Pdeathsig SIGKILL (added to cmd.SysProcAttr) from a thread that lives
// as long as the child. cmd.Wait, cmd.Process and exec.CommandContext work as usual.
func Start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	started := make(chan error, 1)
	go func() {
		// Never unlocked: the runtime discards this thread when the goroutine returns, which
		// it does only once the child has exited.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		// The pidfd is opened before Start returns, so before anyone can reap the child; it
		// becomes readable when the child exits (zombie or reaped), without reaping it.
		pidfd, err := unix.PidfdOpen(cmd.Process.Pid, 0)
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			started <- fmt.Errorf("watch child %s: pidfd_open: %w", cmd.Path, err)
			return
		}
		defer unix.Close(pidfd)
		started <- nil
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err != unix.EINTR {
				return
			}
		}
	}()
	return <-started
}

// Run starts cmd with Start and waits for it.
func Run(cmd *exec.Cmd) error {
	if err := Start(cmd); err != nil {
		return err
	}
	return cmd.Wait()
}
