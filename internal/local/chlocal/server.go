package chlocal

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	readyTimeout = 60 * time.Second // cold dlopen plus loading existing tables
	stopTimeout  = 60 * time.Second // final flushes of MergeTree parts
)

// inProcess guards the one engine a process can host: libchdb keeps global server state and
// cannot even run a second time after a clean stop ("EventNotifier is initialized twice").
var inProcess atomic.Bool

// Server is ClickHouse running inside this process. The engine serves for as long as its
// last statement blocks reading a FIFO that the Server holds open; Stop closes the FIFO, the
// statement ends and the engine shuts its listeners and tables down cleanly.
type Server struct {
	cfg      Config
	fifo     *os.File
	fifoPath string
	tmp      string
	done     chan struct{} // closed when the engine has returned
	errText  string        // the engine's own error; valid once done is closed
	stop     sync.Once
}

// New validates cfg; nothing is downloaded or started until Start.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg}, nil
}

// TCPAddr is the native-protocol address (host:port), known after Start.
func (s *Server) TCPAddr() string { return hostPort(s.cfg.TCPPort) }

// HTTPAddr is the HTTP interface address (host:port), known after Start.
func (s *Server) HTTPAddr() string { return hostPort(s.cfg.HTTPPort) }

// DataDir is the absolute data directory.
func (s *Server) DataDir() string { return s.cfg.DataDir }

func hostPort(p int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)) }

// Start fetches the engine if needed, launches it and returns once both ports answer a real
// query from this very server. On any failure nothing is left running.
func (s *Server) Start(ctx context.Context) error {
	if s.done != nil {
		return errors.New("chlocal: Server already started")
	}
	if !inProcess.CompareAndSwap(false, true) {
		return errors.New("chlocal: this process already ran a ClickHouse engine (libchdb allows one per process lifetime; use Spawn to run and restart servers)")
	}
	err := s.start(ctx)
	if err != nil && s.done == nil {
		inProcess.Store(false)
	}
	return err
}

func (s *Server) start(ctx context.Context) error {
	cfg := &s.cfg
	log := cfg.Logger
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	if err := checkDataDirFree(cfg.DataDir); err != nil {
		return err
	}
	if err := s.pickPorts(); err != nil {
		return err
	}
	libPath, err := EnsureLib(ctx, cfg.CacheDir, log)
	if err != nil {
		return err
	}
	t0 := time.Now()
	lib, err := loadChdb(libPath)
	if err != nil {
		return err
	}
	log.Debug("engine loaded", "version", lib.version(), "took", time.Since(t0).Round(time.Millisecond))
	if err := s.openFIFO(); err != nil {
		return err
	}
	args := s.args()
	s.done = make(chan struct{})
	t1 := time.Now()
	go func() {
		defer close(s.done)
		errText, out := lib.runCmdline(args)
		if out != "" {
			log.Debug("engine output", "output", tail(out, 2000))
		}
		s.errText = errText
	}()
	if err := s.waitReady(ctx); err != nil {
		s.Stop() // never leave a half-started engine behind
		return err
	}
	// The engine holds the FIFO open now; dropping its name means nothing is left in /tmp even
	// if the process is killed or the engine ends it itself.
	os.RemoveAll(s.tmp)
	log.Info("clickhouse ready", "tcp", s.TCPAddr(), "http", s.HTTPAddr(), "data", cfg.DataDir,
		"version", lib.version(), "took", time.Since(t1).Round(time.Millisecond))
	return nil
}

// pickPorts replaces 0 with free ports and refuses taken ones before the engine starts.
func (s *Server) pickPorts() error {
	tcp0, http0 := s.cfg.TCPPort == 0, s.cfg.HTTPPort == 0
	for _, p := range []struct {
		kind string
		port *int
	}{{"tcp", &s.cfg.TCPPort}, {"http", &s.cfg.HTTPPort}} {
		if *p.port != 0 {
			if err := checkPortFree(p.kind, *p.port); err != nil {
				return err
			}
		} else if err := setFreePort(p.port); err != nil {
			return err
		}
	}
	for s.cfg.TCPPort == s.cfg.HTTPPort { // a picked port can coincide with the other one
		p := &s.cfg.HTTPPort
		if tcp0 && !http0 {
			p = &s.cfg.TCPPort
		}
		if err := setFreePort(p); err != nil {
			return err
		}
	}
	return nil
}

func setFreePort(p *int) (err error) {
	*p, err = freePort()
	return err
}

// openFIFO creates the FIFO the engine's last statement reads. Holding it O_RDWR keeps one
// writer alive without blocking in open; closing it gives the reader EOF.
func (s *Server) openFIFO() error {
	tmp, err := os.MkdirTemp("", "packetlake-chlocal-")
	if err != nil {
		return fmt.Errorf("create fifo dir: %w", err)
	}
	path := filepath.Join(tmp, "stop.fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("mkfifo %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("open fifo %s: %w", path, err)
	}
	s.tmp, s.fifo, s.fifoPath = tmp, f, path
	return nil
}

// sqlString quotes s as a ClickHouse string literal.
func sqlString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// args is clickhouse-local's command line: query-level flags before "--", server settings
// after it. Idle client connections must end within the engine's fixed 5 s shutdown wait, or
// it _exits the whole process: poll_interval=1 makes idle native connections notice the
// shutdown within a second, keep_alive_timeout=3 bounds idle HTTP keep-alives.
func (s *Server) args() []string {
	query := "SYSTEM START LISTEN TCP; SYSTEM START LISTEN HTTP; " +
		"SELECT count() FROM file(" + sqlString(s.fifoPath) + ", 'LineAsString') FORMAT Null"
	args := []string{
		"clickhouse",
		"--path=" + s.cfg.DataDir,
		"--tcp_port=" + strconv.Itoa(s.cfg.TCPPort),
		"--http_port=" + strconv.Itoa(s.cfg.HTTPPort),
		"--listen_host=127.0.0.1",
		"--poll_interval=1",
		"--log-level=warning",
		"--multiquery",
		"--query=" + query,
		"--",
		"--keep_alive_timeout=3",
		"--logger.log=" + s.EngineLog(),
	}
	if s.cfg.ConfigFile != "" {
		args = slices.Insert(args, 1, "--config-file="+s.cfg.ConfigFile)
	}
	return args
}

// EngineLog is the file where the engine writes its own warnings and errors.
func (s *Server) EngineLog() string { return filepath.Join(s.cfg.DataDir, "logs", "clickhouse.log") }

// Done is closed when the engine has returned, after Stop or because it failed; Err then
// says why.
func (s *Server) Done() <-chan struct{} { return s.done }

// Err is the engine's exit error once Done is closed: nil after a clean Stop.
func (s *Server) Err() error {
	select {
	case <-s.done:
		if s.errText != "" {
			return fmt.Errorf("clickhouse failed: %s", tail(s.errText, 1500))
		}
		return nil
	default:
		return nil
	}
}

// Stop ends the engine's blocking statement and waits until the engine has shut down. It is
// safe to call more than once. If clients keep connections busy beyond the engine's fixed 5 s
// shutdown wait, the engine ends the whole process itself (exit code 0) instead of returning.
func (s *Server) Stop() error {
	if s.done == nil {
		return nil
	}
	var err error
	s.stop.Do(func() {
		s.fifo.Close()
		poke := time.NewTicker(100 * time.Millisecond)
		defer poke.Stop()
		deadline := time.After(stopTimeout)
		for {
			select {
			case <-s.done:
				os.RemoveAll(s.tmp)
				err = s.Err()
				return
			case <-poke.C:
				pokeFIFO(s.fifoPath)
			case <-deadline:
				err = fmt.Errorf("clickhouse did not stop within %v", stopTimeout)
				return
			}
		}
	})
	return err
}

// pokeFIFO opens and closes the FIFO's write end: an engine stopped during start-up may open
// the FIFO only after our descriptor is gone, and would otherwise wait for a writer forever.
func pokeFIFO(path string) {
	if f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
		f.Close()
	}
}

// engineHoldsFIFO reports whether the engine has opened the FIFO (two descriptors on it in
// this process: ours and the engine's); only then may its name be removed.
func (s *Server) engineHoldsFIFO() bool {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return false
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && l == s.fifoPath {
			n++
		}
	}
	return n >= 2
}
