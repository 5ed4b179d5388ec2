package chlocal

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

// Preflight checks turn the engine's failures into one clear message before it starts: once
// running, ClickHouse reports them as generic exceptions, or (for ports) not at all.

// PortInUseError says a requested port on 127.0.0.1 is taken (match it with errors.As).
type PortInUseError struct {
	Kind string // "tcp" or "http"
	Port int
}

func (e *PortInUseError) Error() string {
	return fmt.Sprintf("%s port 127.0.0.1:%d is already in use (choose another port, or 0 for a free one)", e.Kind, e.Port)
}

// DataDirInUseError says another ClickHouse holds the lock on the data directory.
type DataDirInUseError struct {
	Dir string
	PID string // from <dir>/status; "unknown" if unreadable
}

func (e *DataDirInUseError) Error() string {
	return fmt.Sprintf("data dir %s is in use by another ClickHouse (pid %s)", e.Dir, e.PID)
}

// checkPortFree fails if something already listens on 127.0.0.1:port (a 0.0.0.0 listener on
// the same port blocks this bind too).
func checkPortFree(kind string, port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return &PortInUseError{Kind: kind, Port: port}
	}
	return l.Close()
}

// freePort asks the kernel for an unused loopback port. Another process could take it before
// ClickHouse binds it; that case is caught after launch.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// checkDataDirFree tries the same flock ClickHouse takes on <dir>/status, so a second server
// on a directory in use is refused with the owner's pid instead of ClickHouse's code 76.
func checkDataDirFree(dir string) error {
	f, err := os.OpenFile(filepath.Join(dir, "status"), os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", filepath.Join(dir, "status"), err)
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if err == nil {
		return syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	}
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return dataDirInUse(dir)
	}
	return fmt.Errorf("lock %s: %w", filepath.Join(dir, "status"), err)
}

var statusPID = regexp.MustCompile(`(?m)^PID:\s*(\d+)`)

// dataDirInUse names the owner from the pid ClickHouse writes into <dir>/status.
func dataDirInUse(dir string) error {
	pid := "unknown"
	if b, err := os.ReadFile(filepath.Join(dir, "status")); err == nil {
		if m := statusPID.FindSubmatch(b); m != nil {
			pid = string(m[1])
		}
	}
	return &DataDirInUseError{Dir: dir, PID: pid}
}

// explainExit turns an engine that returned before serving into one clear error. The engine
// prints its own exception to stderr rather than returning it, so the common causes (a race
// with preflight) are re-checked here.
func explainExit(cfg Config, errText string) error {
	if strings.Contains(errText, "Code: 76") {
		return dataDirInUse(cfg.DataDir)
	}
	if err := checkDataDirFree(cfg.DataDir); err != nil {
		return err
	}
	if err := checkPortFree("tcp", cfg.TCPPort); err != nil {
		return err
	}
	if err := checkPortFree("http", cfg.HTTPPort); err != nil {
		return err
	}
	if errText != "" {
		return fmt.Errorf("clickhouse failed: %s", tail(errText, 1500))
	}
	return errors.New("clickhouse exited before serving (its own message is on stderr)")
}
