package childproc

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startFromDyingThread starts cmd from a goroutine that locks its OS thread and returns still
// locked, so the thread the call ran on ends right after: what netns.Do does to a thread it
// cannot switch back, and bpf's Flush to every thread it pins.
func startFromDyingThread(start func(*exec.Cmd) error, cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- start(cmd)
	}()
	return <-errc
}

func TestChildOutlivesTheThreadThatStartedIt(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := startFromDyingThread(Start, cmd); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		t.Fatalf("child started by childproc.Start died when the calling thread ended: %v", err)
	case <-time.After(time.Second):
	}
}

// The hazard itself, so this test fails if the kernel or Go stop behaving as the package
// says: plain exec with Pdeathsig, from a thread that then ends, loses its child.
func TestPlainPdeathsigChildDiesWithItsThread(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := startFromDyingThread(func(c *exec.Cmd) error { return c.Start() }, cmd); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if !strings.Contains(fmt.Sprint(err), "killed") {
			t.Fatalf("child exited with %v, want killed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("child of an ended thread still runs: Pdeathsig no longer follows the thread")
	}
}

// The signal still does its job: when the parent process exits, the child is killed.
func TestChildDiesWithTheProcess(t *testing.T) {
	if os.Getenv("CHILDPROC_PARENT") != "" {
		cmd := exec.Command("sleep", "30")
		if err := Start(cmd); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(cmd.Process.Pid)
		os.Exit(0)
	}
	parent := exec.Command(os.Args[0], "-test.run=^TestChildDiesWithTheProcess$")
	parent.Env = append(os.Environ(), "CHILDPROC_PARENT=1")
	out, err := parent.Output()
	if err != nil {
		t.Fatalf("parent: %v: %s", err, out)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0]))
	if err != nil {
		t.Fatalf("parent printed %q", out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Orphans are reaped by init (or a subreaper), so a killed child disappears from /proc.
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !strings.HasPrefix(string(b), "sleep") {
			return
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("child %d outlived its parent by 10 s", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
