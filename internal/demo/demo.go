// Package demo runs the whole pipeline on one machine against real traffic: an embedded
// ClickHouse and kfake broker, a throwaway lab of two network namespaces joined by a veth pair
// with nginx and dnsmasq on the server side, the collector attached to the server's veth, an
// ingester, and curl, dig, openssl, nping and nmap on the client side. It prints progress and
// the named reports, and leaves nothing running, attached or configured behind, whatever the
// exit path.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/packetlake/packetlake/detector"

	"github.com/packetlake/packetlake/collector"
	"github.com/packetlake/packetlake/console"
	"github.com/packetlake/packetlake/ingester"
	"github.com/packetlake/packetlake/internal/local/chlocal"
	"github.com/packetlake/packetlake/internal/local/kafkalocal"
)

// Config configures Run. The zero value works except for Keep (see there).
type Config struct {
	// Binary is the packetlake executable run as `packetlake clickhouse-local` for ClickHouse;
	// "" means this executable, which is right for the CLI and wrong for a test binary.
	Binary string
	// DataDir holds ClickHouse's and kfake's data and the lab's configs and logs ("" = ".demo").
	// Earlier runs' data is kept and added to; only one demo can use a data dir at a time.
	DataDir string
	// Duration of the traffic (0 = 60 s; at least 5 s).
	Duration time.Duration
	// Keep leaves DataDir in place for querying afterwards (the CLI's default). Without it the
	// demo's subdirectories of DataDir are deleted once everything has stopped, unless the run
	// failed or was interrupted: then they stay, with the servers' logs, for a look.
	Keep bool
	// ProgressEvery is the period of the progress lines (0 = 3 s).
	ProgressEvery time.Duration
	// Out receives the progress lines and the reports (nil = os.Stdout).
	Out io.Writer
	// Logger receives the demo's own steps (nil = discarded). The components log through it
	// too, but only warnings and errors unless Verbose.
	Logger  *slog.Logger
	Verbose bool
	// ConsoleListen is where the web console serves while the demo runs ("" = 127.0.0.1:8080,
	// "off" = no console).
	ConsoleListen string
}

// Summary is what a run did, in numbers the test checks.
type Summary struct {
	Start   time.Time
	Elapsed time.Duration

	CollectorID uint64 // this run's collector_id; the counts below are of its rows only
	ProgramID   uint32 // the XDP program that was attached to the server's veth

	KernelSeen      uint64 // packets the BPF program ran on
	RecordsProduced uint64 // records handed to Kafka
	RecordsAcked    uint64 // records Kafka acknowledged
	Lost            uint64 // ring full + shed + failed produce
	Rows            uint64 // rows in ClickHouse once the ingester caught up

	DNSNames, TLSSNI, HTTPHosts []string // distinct values stored
	Anomalies                   []string // "kind subject" of every anomaly the detector raised
	ScanSource                  string   // the source that sent SYNs to the most ports
	ScanPorts                   uint64   // how many distinct ports it sent SYNs to

	// ConsoleURL is where the console served ("" if it could not listen); ConsoleScanPackets is
	// how many packets its packets view shows for its first port_scan anomaly (a user's click).
	ConsoleURL         string
	ConsoleScanPackets int

	// KernelDrops: packets the server's kernel dropped after packetlake saw them, per drop
	// reason (table drops). ClosedPortDatagrams were sent to the server's UDP ClosedPort;
	// ClosedPortDrops is how many the drops table counts as NO_SOCKET there, ServerNoPorts the
	// server kernel's own count (Udp NoPorts) over the traffic. ScanNoSocketDrops: the TCP
	// packets from the client (the scan's SYNs to closed ports) dropped for NO_SOCKET.
	KernelDrops         map[string]uint64
	ClosedPortDatagrams uint64
	ClosedPortDrops     uint64
	ServerNoPorts       uint64
	ScanNoSocketDrops   uint64
	// TCPHealth: the tcp_health report over the run, by "address:port direction".
	TCPHealth map[string]TCPService

	Traffic    map[string]Runs // client commands by tool
	Namespaces []string        // the lab's namespaces (all deleted when Run returns)
	Processes  []Process       // every process started (all reaped when Run returns)
}

// Run runs the demo until the traffic period is over and the reports are printed, or ctx is
// cancelled. Either way, and on any error, every namespace, process and BPF attachment it made
// is removed before it returns. Not safe to run twice at once in one process (the lab is named
// after the PID).
func Run(ctx context.Context, cfg Config) (sum Summary, err error) {
	if cfg, err = cfg.withDefaults(); err != nil {
		return sum, err
	}
	paths, err := preflight()
	if err != nil {
		return sum, err
	}
	r := &runner{cfg: cfg, log: cfg.Logger, procs: &procs{paths: paths}}
	r.componentLog = cfg.Logger
	if !cfg.Verbose {
		r.componentLog = slog.New(floorHandler{cfg.Logger.Handler(), slog.LevelWarn})
	}
	defer func() {
		cerr := r.cleanup.run(r.log)
		sum.Processes = r.procs.list()
		if cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
		} else if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("demo interrupted; everything it started was stopped and removed: %w", context.Cause(ctx))
		}
		if err == nil && !cfg.Keep {
			err = removeData(cfg.DataDir)
		}
		if cerr == nil {
			r.log.Info("demo stopped: namespaces deleted, servers and tools stopped, program detached")
		}
	}()
	err = r.run(ctx, &sum)
	return sum, err
}

// runner holds one run's moving parts.
type runner struct {
	cfg          Config
	log          *slog.Logger
	componentLog *slog.Logger
	procs        *procs
	cleanup      cleanups

	ch    *chlocal.Process
	kafka *kafkalocal.Embedded
	lab   *lab
	ing   *ingester.Ingester
	col   *collector.Collector
	det   *detector.Detector

	consoleURL string
	reg        *prometheus.Registry // the collector's metrics (kept after its Stop)
}

func (r *runner) run(ctx context.Context, sum *Summary) error {
	sum.Start = time.Now()
	labDir := filepath.Join(r.cfg.DataDir, "lab")
	if err := os.MkdirAll(labDir, 0o755); err != nil {
		return err
	}
	if err := removeStaleLabs(r.procs, r.log); err != nil {
		r.log.Warn("could not remove every namespace an earlier demo left", "err", err)
	}
	if err := r.startStores(ctx); err != nil {
		return err
	}
	r.lab = newLab(os.Getpid())
	sum.Namespaces = []string{r.lab.srvNS, r.lab.cliNS}
	if err := r.lab.create(ctx, r.procs, &r.cleanup, r.log); err != nil {
		return err
	}
	if err := startServers(ctx, r.procs, r.lab, labDir, &r.cleanup); err != nil {
		return err
	}
	r.log.Info("servers ready in the server namespace", "http", "80 443", "dns", 53, "config_and_logs", labDir)
	if err := r.startIngester(ctx); err != nil {
		return err
	}
	if err := r.startCollector(ctx); err != nil {
		return err
	}
	if err := r.startDetector(ctx); err != nil {
		return err
	}
	r.startConsole(ctx)
	sum.CollectorID = r.col.ID()
	var err error
	if sum.ProgramID, err = r.lab.xdpProgID(ctx, r.procs); err != nil {
		return err
	}

	fmt.Fprintf(r.cfg.Out, "Driving traffic for %v from %s to %s (curl, dig, openssl, nping, one nmap scan, a datagram a second to a closed UDP port).\n"+
		"ClickHouse answers meanwhile: curl 'http://%s/?query=SELECT+count()+FROM+%s.packets'\n",
		r.cfg.Duration, r.lab.cliNS, r.lab.srvNS, r.ch.HTTPAddr(), Database)
	probe := &closedPortProbe{}
	if probe.noPortsBefore, err = udpNoPorts(r.lab.srvNS); err != nil {
		return err
	}
	trafficStart := time.Now()
	pctx, stopProgress := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { r.progress(pctx, trafficStart) })
	tr := &traffic{p: r.procs, lab: r.lab, log: r.log, probe: probe}
	sum.Traffic = tr.run(ctx, r.cfg.Duration)
	stopProgress()
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	noPorts, err := udpNoPorts(r.lab.srvNS)
	if err != nil {
		return err
	}
	sum.ServerNoPorts, sum.ClosedPortDatagrams = noPorts-probe.noPortsBefore, probe.sent.Load()

	// Detach first: from here on the counts are final, and ClickHouse must catch up to them.
	if err := r.col.Stop(); err != nil {
		return fmt.Errorf("stop collector: %w", err)
	}
	s := r.col.Stats()
	sum.KernelSeen, sum.RecordsProduced, sum.RecordsAcked, sum.Lost = s.KernelSeen, s.RecordsProduced, s.RecordsAcked, lost(s)
	sum.Rows, err = r.waitRows(ctx, s.RecordsAcked, time.Minute)
	r.printProgress(ctx, trafficStart)
	if err != nil {
		return err
	}
	exported, err := dropsExported(r.reg)
	if err != nil {
		return err
	}
	if err := r.waitDrops(ctx, exported, time.Minute); err != nil {
		return err
	}
	// One more detection cycle over the last rows, then the anomalies are final.
	time.Sleep(2 * detector.DefaultConfig().Interval)
	if err := r.det.Stop(); err != nil {
		return fmt.Errorf("stop detector: %w", err)
	}
	if err := r.ing.Stop(); err != nil {
		return fmt.Errorf("stop ingester: %w", err)
	}
	if err := r.fillSummary(ctx, sum); err != nil {
		return err
	}
	if err := r.fillDrops(ctx, sum); err != nil {
		return err
	}
	if err := r.fillTCPHealth(ctx, sum); err != nil {
		return err
	}
	if err := r.printReports(ctx, sum.Start); err != nil {
		return err
	}
	r.printTCPHealth(sum)
	if err := r.printDrops(ctx, sum); err != nil {
		return err
	}
	if err := r.printAnomalies(ctx, sum.Start); err != nil {
		return err
	}
	r.followConsole(ctx, sum)
	sum.Elapsed = time.Since(sum.Start)
	fmt.Fprintf(r.cfg.Out, "\nTraffic: %s.\n%d packets seen, %d rows stored, %d lost; nmap's source %s probed %d ports. Took %v.\n",
		formatRuns(sum.Traffic), sum.KernelSeen, sum.Rows, sum.Lost, sum.ScanSource, sum.ScanPorts, sum.Elapsed.Round(time.Second))
	fmt.Fprintf(r.cfg.Out, "Kernel drops of packets packetlake saw: %s (the scan's SYNs to closed ports: %d; %d datagrams to closed UDP port %d: %d counted, the server kernel's NoPorts says %d).\n",
		formatDrops(sum.KernelDrops), sum.ScanNoSocketDrops, sum.ClosedPortDatagrams, ClosedPort, sum.ClosedPortDrops, sum.ServerNoPorts)
	r.printHowTo()
	return nil
}

func (cfg Config) withDefaults() (Config, error) {
	if cfg.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return cfg, fmt.Errorf("find the packetlake binary: %w", err)
		}
		cfg.Binary = exe
	}
	if cfg.DataDir == "" {
		cfg.DataDir = ".demo"
	}
	// Absolute: nginx resolves relative paths in its config against its own prefix.
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return cfg, err
	}
	cfg.DataDir = abs
	if cfg.Duration == 0 {
		cfg.Duration = time.Minute
	}
	if cfg.Duration < 5*time.Second {
		return cfg, fmt.Errorf("duration %v: at least 5s, so the scan and a few rounds of traffic fit", cfg.Duration)
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 3 * time.Second
	}
	if cfg.ConsoleListen == "" {
		cfg.ConsoleListen = console.DefaultListen
	}
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}

// removeData deletes what the demo put under dir, and dir itself if nothing else is left in it.
func removeData(dir string) error {
	var errs []error
	for _, name := range []string{"clickhouse", "kafka", "lab", "clickhouse.log"} {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			errs = append(errs, err)
		}
	}
	os.Remove(dir) // fails, harmlessly, if the user keeps other files there
	return errors.Join(errs...)
}

// floorHandler drops records below min: the components' info lines (every partition
// assignment, every batch) would bury the progress lines.
type floorHandler struct {
	slog.Handler
	min slog.Level
}

func (h floorHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h floorHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return floorHandler{h.Handler.WithAttrs(as), h.min}
}

func (h floorHandler) WithGroup(name string) slog.Handler {
	return floorHandler{h.Handler.WithGroup(name), h.min}
}
