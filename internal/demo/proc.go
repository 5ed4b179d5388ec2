package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/packetlake/packetlake/internal/childproc"
)

// Process is one process the demo started (servers, traffic tools, `ip`, ClickHouse).
type Process struct {
	PID  int
	Name string // the executable's base name, as /proc/<pid>/comm shows it (first 15 bytes)
}

// procs starts every external process of the demo and remembers it, so each is stopped by its
// own PID and the test can check that none outlived Run.
type procs struct {
	paths map[string]string // tool name -> absolute path (preflight)

	mu  sync.Mutex
	all []Process
}

func (p *procs) record(name string, pid int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.all = append(p.all, Process{PID: pid, Name: name})
}

func (p *procs) list() []Process {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Process(nil), p.all...)
}

// command prepares tool to run inside network namespace ns ("" = this one). `ip netns exec`
// execs the tool in place, so the PID we get is the tool's own and our signals reach it
// directly. Each process leads its own group: a terminal's Ctrl-C reaches only the demo, which
// then stops the rest in order, and killing the group also takes any helper the tool forked.
// childproc.Start adds Pdeathsig, which kills it if the demo itself dies without unwinding
// (kill -9).
func (p *procs) command(ctx context.Context, ns, tool string, args ...string) *exec.Cmd {
	path := p.paths[tool]
	if ns != "" {
		args = append([]string{"netns", "exec", ns, path}, args...)
		path = p.paths["ip"]
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// run runs a bounded one-shot command and returns its combined output. The process group is
// killed when ctx ends or timeout passes.
func (p *procs) run(ctx context.Context, timeout time.Duration, ns, tool string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := p.command(ctx, ns, tool, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := childproc.Start(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", tool, err)
	}
	p.record(tool, cmd.Process.Pid)
	if err := cmd.Wait(); err != nil {
		return out.Bytes(), fmt.Errorf("%s %s: %w: %s", tool, strings.Join(args, " "), err, tail(out.String(), 400))
	}
	return out.Bytes(), nil
}

// daemon is a long-running server process (nginx, dnsmasq) with its output in a log file.
type daemon struct {
	name    string
	pid     int
	logPath string
	exited  chan struct{} // closed once reaped
	err     error         // valid after exited
}

// start starts a daemon; it runs until stop.
func (p *procs) start(ns, logPath, tool string, args ...string) (*daemon, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", tool, err)
	}
	cmd := p.command(context.Background(), ns, tool, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := childproc.Start(cmd); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", tool, err)
	}
	p.record(tool, cmd.Process.Pid)
	d := &daemon{name: tool, pid: cmd.Process.Pid, logPath: logPath, exited: make(chan struct{})}
	go func() {
		d.err = cmd.Wait()
		f.Close()
		close(d.exited)
	}()
	return d, nil
}

// stop sends SIGTERM to the daemon's group, waits up to grace, then SIGKILLs it. It returns
// once the process is reaped. Safe to call again.
func (d *daemon) stop(grace time.Duration) error {
	select {
	case <-d.exited:
		return nil // already reaped: its PID (and group) may belong to someone else by now
	default:
	}
	if err := killGroup(d.pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop %s (pid %d): %w", d.name, d.pid, err)
	}
	select {
	case <-d.exited:
		return nil
	case <-time.After(grace):
	}
	killGroup(d.pid, syscall.SIGKILL)
	<-d.exited
	return fmt.Errorf("%s (pid %d) ignored SIGTERM for %v: killed", d.name, d.pid, grace)
}

// logTail is the end of the daemon's log, for error messages.
func (d *daemon) logTail() string {
	b, _ := os.ReadFile(d.logPath)
	return tail(string(b), 600)
}

// killGroup signals the process group led by pid (every process here leads its own).
func killGroup(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
