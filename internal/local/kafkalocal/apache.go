package kafkalocal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/packetlake/packetlake/internal/childproc"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// apacheStartTimeout bounds one start; a cold JVM needs 3-4 s on the 2-core machines and log
	// recovery after kill -9 adds a little.
	apacheStartTimeout = 90 * time.Second
	// apacheStopGrace is how long Stop lets the broker shut down cleanly before SIGKILL.
	apacheStopGrace = 30 * time.Second
)

// ApacheConfig configures StartApache.
type ApacheConfig struct {
	// DataDir holds server.properties, log4j.properties and the broker's log dirs. Reusing a
	// DataDir reuses its topics and offsets. Required.
	DataDir string
	// Port is the client (PLAINTEXT) port on 127.0.0.1; 0 picks a free one.
	Port int
	// LogPath receives the broker's stdout and stderr, appended; default DataDir/broker.log.
	LogPath string
	// CacheDir holds the downloaded jars; default cache.Dir().
	CacheDir string
	// Logger reports fetches and lifecycle; nil discards.
	Logger *slog.Logger
	// Properties are added to server.properties after the launcher's own, which they override
	// (e.g. log.retention.check.interval.ms for a test of retention).
	Properties map[string]string
	// Secure, when set, adds a SASL_SSL listener (TLS + SASL/SCRAM) beside the PLAINTEXT one,
	// the way a production cluster is reached.
	Secure *SecureListener
}

// SecureListener is a SASL_SSL listener on 127.0.0.1 with SCRAM-SHA-256 and SCRAM-SHA-512.
// The PLAINTEXT listener stays for the controller, the broker itself and administration: its
// principal, User:ANONYMOUS, is a super user, so with Authorizer on every SCRAM user gets
// exactly the ACLs a test grants.
type SecureListener struct {
	// Port on 127.0.0.1; 0 picks a free one.
	Port int
	// KeyStore is one PEM file holding the server's private key (unencrypted PKCS#8) and its
	// certificate chain, valid for 127.0.0.1.
	KeyStore string
	// Users are SCRAM credentials (user -> password), created for both mechanisms at start.
	Users map[string]string
	// Authorizer turns on KRaft's StandardAuthorizer: no ACL, no access.
	Authorizer bool
}

// Apache is a real Apache Kafka broker (KRaft, one node acting as broker and controller) running
// as a child JVM. It exists so integration and fault tests meet the real broker's behaviour
// (recovery after kill -9, group coordination, idempotent producer state), not a fake's.
type Apache struct {
	java, libs, dataDir, logPath string
	port, cport, sport           int
	secure                       *SecureListener
	heapMiB                      int
	props                        nodeProps
	extra                        map[string]string // ApacheConfig.Properties
	logger                       *slog.Logger

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when cmd has exited and been reaped
	exitErr  error
	logStart int64 // offset in logPath where the current run's output begins
}

// StartApache fetches the jars if needed, formats DataDir on first use and starts the broker,
// returning once a real metadata request to it succeeds.
func StartApache(ctx context.Context, cfg ApacheConfig) (*Apache, error) {
	a, err := newApache(ctx, cfg, 512)
	if err != nil {
		return nil, err
	}
	a.props.nodeID, a.props.replicas = 1, 1
	a.props.voters = fmt.Sprintf("1@127.0.0.1:%d", a.props.cport)
	id, err := kafkaUUID()
	if err != nil {
		return nil, err
	}
	if err := a.prepare(ctx, id); err != nil {
		return nil, err
	}
	if err := a.start(ctx); err != nil {
		return nil, err
	}
	if a.secure != nil && len(a.secure.Users) > 0 {
		if err := a.addSCRAMUsers(ctx); err != nil {
			a.Stop()
			return nil, err
		}
	}
	return a, nil
}

// newApache checks cfg, picks the ports and finds Java and the jars; props.nodeID, voters and
// replicas are left to the caller.
func newApache(ctx context.Context, cfg ApacheConfig, heapMiB int) (*Apache, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("start apache kafka: DataDir is required")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("start apache kafka: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("start apache kafka: create data dir: %w", err)
	}
	a := &Apache{dataDir: dataDir, logPath: cfg.LogPath, port: cfg.Port, logger: logger, heapMiB: heapMiB}
	if a.logPath == "" {
		a.logPath = filepath.Join(dataDir, "broker.log")
	}
	if a.port == 0 {
		if a.port, err = freePort(); err != nil {
			return nil, err
		}
	} else if err := checkPortFree(a.port, "kafka"); err != nil {
		return nil, err
	}
	if a.cport, err = freePort(); err != nil {
		return nil, err
	}
	if cfg.Secure != nil {
		a.secure, a.sport = cfg.Secure, cfg.Secure.Port
		if a.sport == 0 {
			if a.sport, err = freePort(); err != nil {
				return nil, err
			}
		}
	}
	if a.java, err = javaPath(); err != nil {
		return nil, err
	}
	if a.libs, err = EnsureKafka(ctx, cfg.CacheDir, logger); err != nil {
		return nil, err
	}
	a.props = nodeProps{port: a.port, cport: a.cport, logDirs: filepath.Join(dataDir, "kraft-logs")}
	a.extra = cfg.Properties
	return a, nil
}

// prepare writes the configuration and formats the log dir with cluster id on first use.
func (a *Apache) prepare(ctx context.Context, clusterID string) error {
	files := map[string]string{
		"server.properties": brokerProperties(a.props) + secureProperties(a.port, a.cport, a.sport, a.secure) + extraProperties(a.extra),
		"log4j.properties":  log4jProperties,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(a.dataDir, name), []byte(body), 0o644); err != nil {
			return fmt.Errorf("start apache kafka: write %s: %w", name, err)
		}
	}
	return formatStorage(ctx, a.java, a.libs, a.dataDir, a.props.logDirs, clusterID)
}

// SecureAddr is the SASL_SSL listener's address ("" without Secure).
func (a *Apache) SecureAddr() string {
	if a.secure == nil {
		return ""
	}
	return "127.0.0.1:" + strconv.Itoa(a.sport)
}

// addSCRAMUsers creates the SCRAM credentials over the PLAINTEXT listener (KRaft stores them in
// the metadata log) and waits until the secure listener authenticates the first user.
func (a *Apache) addSCRAMUsers(ctx context.Context) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()))
	if err != nil {
		return err
	}
	defer cl.Close()
	// A user may appear once per request: one request per mechanism.
	for _, m := range []kadm.ScramMechanism{kadm.ScramSha256, kadm.ScramSha512} {
		var ups []kadm.UpsertSCRAM
		for u, p := range a.secure.Users {
			ups = append(ups, kadm.UpsertSCRAM{User: u, Mechanism: m, Iterations: 4096, Password: p})
		}
		res, err := kadm.NewClient(cl).AlterUserSCRAMs(ctx, nil, ups)
		if err == nil {
			err = res.Error()
		}
		if err != nil {
			return fmt.Errorf("apache kafka: create SCRAM users (%s): %w", m, err)
		}
	}
	return nil
}

// Addr is the bootstrap address for clients, host:port on loopback. It never changes, also
// across Restart, so clients created before a crash reconnect to the restarted broker.
func (a *Apache) Addr() string { return "127.0.0.1:" + strconv.Itoa(a.port) }

// Pid is the JVM's process id, 0 before the first start.
func (a *Apache) Pid() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd == nil {
		return 0
	}
	return a.cmd.Process.Pid
}

// Stop shuts the broker down cleanly (SIGTERM runs Kafka's controlled shutdown) and SIGKILLs it
// if it is still running after a grace period. Safe to call on a stopped broker.
func (a *Apache) Stop() {
	cmd, done := a.current()
	if cmd == nil || exited(done) {
		return
	}
	start := time.Now()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Process.Signal(syscall.SIGCONT) // a paused JVM acts on SIGTERM only once continued
	select {
	case <-done:
		a.logger.Info("apache kafka stopped", "pid", cmd.Process.Pid, "took", time.Since(start).Round(time.Millisecond))
	case <-time.After(apacheStopGrace):
		a.logger.Warn("apache kafka ignored SIGTERM, killing", "pid", cmd.Process.Pid, "grace", apacheStopGrace)
		_ = cmd.Process.Kill()
		<-done
	}
}

// Kill crashes the broker with SIGKILL, the way fault tests need it, and returns once the
// process is gone (so its ports and log-dir lock are free for Restart).
func (a *Apache) Kill() {
	cmd, done := a.current()
	if cmd == nil || exited(done) {
		return
	}
	_ = cmd.Process.Kill()
	<-done
	a.logger.Info("apache kafka killed", "pid", cmd.Process.Pid)
}

// Pause stops the JVM with SIGSTOP: it keeps its sockets and session but answers nothing, like a
// broker in a long GC pause or on a frozen VM. Resume continues it.
func (a *Apache) Pause() error { return a.signal(syscall.SIGSTOP) }

// Resume continues a paused JVM with SIGCONT.
func (a *Apache) Resume() error { return a.signal(syscall.SIGCONT) }

func (a *Apache) signal(sig syscall.Signal) error {
	cmd, done := a.current()
	if cmd == nil || exited(done) {
		return fmt.Errorf("apache kafka node %d is not running", a.props.nodeID)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %v to apache kafka node %d (pid %d): %w", sig, a.props.nodeID, cmd.Process.Pid, err)
	}
	return nil
}

// NodeID is the node's KRaft node.id (broker and controller id alike).
func (a *Apache) NodeID() int { return a.props.nodeID }

// Restart stops the broker if it runs and starts it again on the same data dir and the same
// ports, waiting until it answers.
func (a *Apache) Restart(ctx context.Context) error {
	a.Stop()
	if err := checkPortFree(a.port, "kafka"); err != nil {
		return fmt.Errorf("restart apache kafka: %w", err)
	}
	if err := checkPortFree(a.cport, "kafka controller"); err != nil {
		return fmt.Errorf("restart apache kafka: %w", err)
	}
	return a.start(ctx)
}

func (a *Apache) current() (*exec.Cmd, chan struct{}) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cmd, a.done
}

func exited(done chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// start launches the JVM and waits until the broker serves metadata.
func (a *Apache) start(ctx context.Context) error {
	begin := time.Now()
	logf, err := os.OpenFile(a.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start apache kafka: open log: %w", err)
	}
	defer logf.Close() // the child holds its own descriptor
	st, err := logf.Stat()
	if err != nil {
		return fmt.Errorf("start apache kafka: stat log: %w", err)
	}
	args := append(jvmOptions(a.dataDir, a.heapMiB), "-cp", filepath.Join(a.libs, "*"), "kafka.Kafka",
		filepath.Join(a.dataDir, "server.properties"))
	cmd := exec.Command(a.java, args...)
	cmd.Dir = a.dataDir
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: a terminal's Ctrl-C reaches the test, which stops the broker in order.
	// childproc.Start adds Pdeathsig: a test binary that dies (panic, timeout) takes its broker
	// with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := childproc.Start(cmd); err != nil {
		return fmt.Errorf("start apache kafka: %w", err)
	}
	done := make(chan struct{})
	a.mu.Lock()
	a.cmd, a.done, a.exitErr, a.logStart = cmd, done, nil, st.Size()
	a.mu.Unlock()
	go func() {
		err := cmd.Wait()
		a.mu.Lock()
		a.exitErr = err
		a.mu.Unlock()
		close(done)
	}()

	if err := a.waitReady(ctx, done); err != nil {
		a.Kill()
		return err
	}
	a.logger.Info("apache kafka ready", "addr", a.Addr(), "pid", cmd.Process.Pid, "data", a.dataDir,
		"log", a.logPath, "took", time.Since(begin).Round(time.Millisecond))
	return nil
}

// waitReady polls with a real kadm request: an open port is not enough, the broker must have
// registered with its controller and be unfenced before it lists itself in metadata.
func (a *Apache) waitReady(ctx context.Context, done chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, apacheStartTimeout)
	defer cancel()
	// pctx also ends when the JVM exits, so a dead broker fails the start at once.
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	go func() {
		select {
		case <-done:
			pcancel()
		case <-pctx.Done():
		}
	}()
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.DialTimeout(time.Second))
	if err != nil {
		return fmt.Errorf("start apache kafka: readiness client: %w", err)
	}
	defer cl.Close()
	for {
		// A fresh request each time (kadm's BrokerMetadata may answer from the client's cache):
		// the node is ready once the cluster lists it, i.e. it registered and was unfenced.
		rctx, rcancel := context.WithTimeout(pctx, 2*time.Second)
		resp, err := kmsg.NewPtrMetadataRequest().RequestWith(rctx, cl)
		rcancel()
		if err == nil && slices.ContainsFunc(resp.Brokers, func(b kmsg.MetadataResponseBroker) bool {
			return b.NodeID == int32(a.props.nodeID)
		}) {
			return nil
		}
		select {
		case <-done:
			a.mu.Lock()
			exitErr := a.exitErr
			a.mu.Unlock()
			return fmt.Errorf("start apache kafka: broker exited during startup (%v); last lines of %s:\n%s", exitErr, a.logPath, a.logTail(40))
		case <-ctx.Done():
			return fmt.Errorf("start apache kafka: not ready on %s after %s (last error: %v); last lines of %s:\n%s",
				a.Addr(), apacheStartTimeout, err, a.logPath, a.logTail(40))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// logTail returns the last n lines this run wrote to the log.
func (a *Apache) logTail(n int) string {
	f, err := os.Open(a.logPath)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	defer f.Close()
	a.mu.Lock()
	from := a.logStart
	a.mu.Unlock()
	if st, err := f.Stat(); err == nil && st.Size()-from > 64<<10 {
		from = st.Size() - 64<<10
	}
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return "(" + err.Error() + ")"
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return tail(string(b), n)
}
