package chlocal

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/packetlake/packetlake/internal/childproc"
)

// SpawnConfig describes a ClickHouse child process. Tests and demos run the engine out of
// process so that it can be kill -9'ed and restarted, and so that 566 MB of engine never
// lives inside a test binary.
type SpawnConfig struct {
	Binary   string // path to the packetlake binary
	DataDir  string // required
	TCPPort  int    // 0 = the child picks a free port
	HTTPPort int    // 0 = the child picks a free port
	LogPath  string // the child's stderr is appended here; "" keeps only an in-memory tail
	// ConfigFile is passed on as Config.ConfigFile (remote_servers, macros); "" = none.
	ConfigFile string
	CacheDir   string // "" = the child's default (cache.Dir())
	// ReadyTimeout bounds the wait for the ready line; 0 means 5 minutes, enough for the
	// one-time engine download.
	ReadyTimeout time.Duration
	// StopGrace is how long Stop waits after SIGTERM before SIGKILL; 0 means 20 s (the engine
	// itself waits up to 5 s for client connections).
	StopGrace time.Duration
	// OnUnexpectedExit, if set, is called (from another goroutine) when the child exits without
	// Stop or Kill: a server that dies under a test says how, instead of as "connection refused".
	OnUnexpectedExit func(pid int, err error, stderrTail string)
}

// Process is a running `packetlake clickhouse-local` child.
type Process struct {
	cfg      SpawnConfig
	cmd      *exec.Cmd
	stderr   *tailBuffer
	tcp      string
	http     string
	exited   chan struct{} // closed once the child is reaped
	waitErr  error         // valid once exited is closed
	stopOnce sync.Once
	stopping atomic.Bool // Stop or Kill was called
	ready    atomic.Bool // the child printed its ready line
	stopErr  error
}

// Spawn starts the child and returns once it printed its ready line. ctx bounds only the
// start; the child runs until Stop or Kill. If the child exits early its stderr tail is in the
// error; on any failure the child is killed and reaped before Spawn returns.
//
// A port left 0 is picked by the child (freePort) and bound by the engine a moment later;
// another process can take it in between (a clean-clone CI lost test/cluster's ClickHouse to
// that once). The engine cannot bind again in the same process (one per process lifetime), so
// Spawn starts a new child, at most spawnTries times in all; a port that was given is never
// retried.
func Spawn(ctx context.Context, cfg SpawnConfig) (*Process, error) {
	for try := 1; ; try++ {
		p, err := spawnOnce(ctx, cfg)
		if err == nil || try == spawnTries || !lostPickedPort(cfg, err) {
			return p, err
		}
	}
}

const spawnTries = 3

// portTaken is how a child says a port was taken (PortInUseError), as it reaches Spawn in the
// child's stderr.
var portTaken = regexp.MustCompile(`\b(tcp|http) port 127\.0\.0\.1:\d+ is already in use`)

// lostPickedPort reports whether err is a child's failure to bind a port it picked itself.
func lostPickedPort(cfg SpawnConfig, err error) bool {
	m := portTaken.FindStringSubmatch(err.Error())
	return m != nil && (m[1] == "tcp" && cfg.TCPPort == 0 || m[1] == "http" && cfg.HTTPPort == 0)
}

func spawnOnce(ctx context.Context, cfg SpawnConfig) (*Process, error) {
	if cfg.Binary == "" || cfg.DataDir == "" {
		return nil, errors.New("chlocal: SpawnConfig.Binary and DataDir are required")
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 5 * time.Minute
	}
	if cfg.StopGrace == 0 {
		cfg.StopGrace = 20 * time.Second
	}
	args := []string{"clickhouse-local", "--data", cfg.DataDir,
		"--tcp-port", strconv.Itoa(cfg.TCPPort), "--http-port", strconv.Itoa(cfg.HTTPPort)}
	if cfg.CacheDir != "" {
		args = append(args, "--cache", cfg.CacheDir)
	}
	if cfg.ConfigFile != "" {
		args = append(args, "--config-file", cfg.ConfigFile)
	}
	p := &Process{cfg: cfg, stderr: &tailBuffer{max: 8 << 10}, exited: make(chan struct{})}
	p.cmd = exec.Command(cfg.Binary, args...)
	// The child must not outlive a crashed parent: it would keep the data dir locked. It gets
	// its own process group so a terminal's Ctrl-C reaches only the parent, which then stops
	// its clients (e.g. an ingester's last flush) before stopping ClickHouse.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // childproc.Start adds Pdeathsig
	p.cmd.Stderr = p.stderr
	var logFile *os.File
	if cfg.LogPath != "" {
		var err error
		if logFile, err = os.OpenFile(cfg.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			return nil, fmt.Errorf("open child log: %w", err)
		}
		// Closed only after the child is reaped: a failing write would make exec close the
		// pipe and the child would die of SIGPIPE on its next log line.
		p.cmd.Stderr = io.MultiWriter(logFile, p.stderr)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("stdout pipe: %w", err)
	}
	if err := childproc.Start(p.cmd); err != nil {
		if logFile != nil {
			logFile.Close()
		}
		return nil, fmt.Errorf("start %s: %w", cfg.Binary, err)
	}
	ready := make(chan [2]string, 1)
	go p.readStdout(stdout, ready)
	go func() {
		p.waitErr = p.cmd.Wait()
		if logFile != nil {
			logFile.Close()
		}
		close(p.exited)
		// A child that exits before its ready line is Spawn's error (and may be retried), not
		// an unexpected exit of a running server.
		if !p.stopping.Load() && p.ready.Load() && cfg.OnUnexpectedExit != nil {
			cfg.OnUnexpectedExit(p.cmd.Process.Pid, p.waitErr, p.stderr.String())
		}
	}()

	ctx, cancel := context.WithTimeout(ctx, cfg.ReadyTimeout)
	defer cancel()
	select {
	case addrs := <-ready:
		p.tcp, p.http = addrs[0], addrs[1]
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("clickhouse-local on %s exited before ready (%v): %s", cfg.DataDir, p.waitErr, p.stderr.String())
	case <-ctx.Done():
		p.Kill()
		return nil, fmt.Errorf("clickhouse-local on %s not ready within %v: %w; stderr: %s", cfg.DataDir, cfg.ReadyTimeout, ctx.Err(), p.stderr.String())
	}
}

// readStdout reports the ready line, then keeps draining so the child never blocks on a full
// pipe.
func (p *Process) readStdout(r io.Reader, ready chan<- [2]string) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if tcp, http, _, ok := parseReadyLine(sc.Text()); ok {
			p.ready.Store(true)
			select {
			case ready <- [2]string{tcp, http}:
			default:
			}
		}
	}
	io.Copy(io.Discard, r)
}

// Pid is the child's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// TCPAddr is the native-protocol address (host:port).
func (p *Process) TCPAddr() string { return p.tcp }

// HTTPAddr is the HTTP interface address (host:port).
func (p *Process) HTTPAddr() string { return p.http }

// Stop asks the child to shut down cleanly (SIGTERM) and waits; after StopGrace it is killed
// and Stop reports that. Safe to call more than once, and after Kill.
func (p *Process) Stop() error {
	p.stopping.Store(true)
	p.stopOnce.Do(func() {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			p.stopErr = fmt.Errorf("signal clickhouse-local: %w", err)
		}
		select {
		case <-p.exited:
			if p.waitErr != nil {
				p.stopErr = fmt.Errorf("clickhouse-local exited with %v: %s", p.waitErr, p.stderr.String())
			}
		case <-time.After(p.cfg.StopGrace):
			p.Kill()
			p.stopErr = fmt.Errorf("clickhouse-local did not stop within %v after SIGTERM; killed", p.cfg.StopGrace)
		}
	})
	return p.stopErr
}

// Kill ends the child with SIGKILL, like a crash, and returns once it is reaped, so its data
// dir lock is released and a new server may start on the same directory right away.
func (p *Process) Kill() error {
	p.stopping.Store(true)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill clickhouse-local: %w", err)
	}
	<-p.exited
	p.stopOnce.Do(func() {}) // a later Stop has nothing left to do
	return nil
}

// Stderr returns the last few KiB the child wrote to stderr (for test failure messages).
func (p *Process) Stderr() string { return p.stderr.String() }

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return tail(string(t.b), t.max)
}

// ReportExit returns an OnUnexpectedExit that writes what happened to standard error, for test
// harnesses whose later failures would otherwise only say "connection refused".
func ReportExit(what string) func(pid int, err error, stderrTail string) {
	return func(pid int, err error, stderrTail string) {
		fmt.Fprintf(os.Stderr, "chlocal: %s (pid %d) exited unexpectedly at %s: %v; its stderr ends:\n%s\n",
			what, pid, time.Now().UTC().Format("15:04:05.000"), err, stderrTail)
	}
}
