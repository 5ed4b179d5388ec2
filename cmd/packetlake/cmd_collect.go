package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/packetlake/packetlake/bpf"
	"github.com/packetlake/packetlake/collector"
)

func init() {
	register(subcommand{
		name:    "collect",
		summary: "record an interface's packets (or replay a capture) into Kafka",
		setup:   setupCollect,
	})
}

// setupCollect: collect attaches the BPF program to an interface (or adopts the one pinned for
// it) and ships its records to Kafka until SIGINT/SIGTERM, then ships what it read and leaves
// the program pinned (--on-stop detach: detaches cleanly); --detach ends a pinned run and exits.
// With --pcap it replays a capture instead and exits when the capture is done.
func setupCollect() (*flag.FlagSet, func(context.Context) error) {
	cfg := collector.DefaultConfig()
	fs := flag.NewFlagSet("collect", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: packetlake collect --iface IF --brokers HOST:PORT[,...] [flags]\n"+
			"       packetlake collect --pcap FILE --brokers HOST:PORT[,...] [flags]\n"+
			"       packetlake collect --detach --iface IF --brokers HOST:PORT[,...] [flags]\n\n"+
			"Records every packet arriving on IF with the BPF program and produces frames of records\n"+
			"to Kafka; with --pcap, runs a capture through the same program instead of attaching.\n"+
			"Needs root (or CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN).\n\n"+
			"The program, its ring buffer, counters and flow tables are pinned in --pin-dir (bpffs,\n"+
			"mounted at /sys/fs/bpf if needed), so they outlive the process: a crash, an OOM kill or an\n"+
			"upgrade leaves the program recording, and the next collect on IF adopts it and continues\n"+
			"the run (same collector_id, seq going on, what the ring held read, what it could not hold\n"+
			"counted). SIGTERM ships what was read and leaves the program attached for that next\n"+
			"collect (--on-stop detach ends the run instead). To detach for good, run\n"+
			"  packetlake collect --detach --iface IF --brokers ...\n"+
			"which drains the ring, publishes the final stats, detaches and removes the pins\n"+
			"(without Kafka, removing the pin directory also detaches, losing what the ring holds).\n"+
			"A pin another packetlake build or other settings made is replaced (logged, its run ended,\n"+
			"the records in its ring counted in records_discarded). --pin-dir '' pins nothing: the\n"+
			"program dies with the process.\n\n")
		fs.PrintDefaults()
	}
	ring, maxBuf, frameBytes := bytesFlag(cfg.RingBytes), bytesFlag(cfg.MaxBufferedBytes), bytesFlag(cfg.FrameMaxBytes)
	fs.StringVar(&cfg.Iface, "iface", "", "interface to record (required unless --pcap)")
	fs.StringVar(&cfg.NetNS, "netns", "", "network namespace (name under /run/netns) the interface lives in")
	fs.StringVar(&cfg.Hook, "hook", cfg.Hook, "where the program runs: xdp or tc")
	fs.StringVar(&cfg.XDPMode, "xdp-mode", cfg.XDPMode, "XDP attach mode: auto, native or generic")
	fs.BoolVar(&cfg.XDPFrags, "xdp-frags", cfg.XDPFrags, "attach the frags-aware XDP program even at an ordinary MTU, so the MTU can be raised past one buffer (jumbo frames) while attached; ~8 ns more per packet")
	kafka := addKafkaFlags(fs)
	fs.StringVar(&cfg.Topic, "topic", cfg.Topic, "Kafka topic for packet frames")
	fs.StringVar(&cfg.StatsTopic, "stats-topic", cfg.StatsTopic, "Kafka topic for stats messages")
	fs.StringVar(&cfg.FlowsTopic, "flows-topic", cfg.FlowsTopic, "Kafka topic for the exact flow counters (empty: no flow export)")
	fs.BoolVar(&cfg.Drops, "drops", cfg.Drops, "count the packets the kernel drops after the program saw them, per drop reason and flow (a tracepoint program that runs only on drops; --drops=false: off)")
	fs.StringVar(&cfg.DropsTopic, "drops-topic", cfg.DropsTopic, "Kafka topic for the kernel drop counts (empty: off)")
	fs.IntVar(&cfg.DropEntries, "drop-entries", cfg.DropEntries, "(reason, flow) pairs the kernel counts drops under; more count as MAP_FULL (0: program default, 4096)")
	fs.DurationVar(&cfg.FlowInterval, "flow-interval", cfg.FlowInterval, "period of the flow counter exports")
	fs.DurationVar(&cfg.FlowIdle, "flow-idle", cfg.FlowIdle, "delete a flow from the kernel map after this long without packets (once exported)")
	fs.IntVar(&cfg.FlowEntries, "flow-entries", cfg.FlowEntries, "flows tracked at once in each kernel flow table, IPv4 and IPv6/other; a table has 4/3 as many buckets rounded up to a power of two, each ~48 B per possible CPU (0: program default, 49152: 65536 buckets)")
	fs.BoolVar(&cfg.Receivers, "receivers", cfg.Receivers, "name on each exported TCP/UDP flow the process reading its socket (pid, command, cgroup, container, pod): a tracing program on every socket read of the host (raw tracepoint sock:sock_recv_length, Linux 6.5+)")
	fs.IntVar(&cfg.ReceiverEntries, "receiver-entries", cfg.ReceiverEntries, "sockets the kernel remembers for --receivers at once, least recently read forgotten first (0: default 16384)")
	fs.IntVar(&cfg.SampleMax, "sample-max", cfg.SampleMax, "record at worst 1 in N ordinary packets when the ring fills (0: default 64; 1: never sample)")
	fs.BoolVar(&cfg.NoTLSReassembly, "no-tls-reassembly", cfg.NoTLSReassembly, "do not copy the later TCP segments of a TLS ClientHello longer than its first segment (post-quantum hellos then get no JA4)")
	fs.StringVar(&cfg.Host, "host", cfg.Host, "host name stamped on frames and stats")
	fs.Var(&ring, "ring-bytes", "BPF ring buffer size, a power of two (e.g. 64M)")
	fs.IntVar(&cfg.WakeupBytes, "wakeup-bytes", cfg.WakeupBytes, "ring fill level that wakes the reader (0: program default)")
	fs.Var(&frameBytes, "frame-max-bytes", "flush a frame at this size")
	fs.DurationVar(&cfg.FrameMaxAge, "frame-max-age", cfg.FrameMaxAge, "flush a frame this long after its first record")
	fs.Var(&maxBuf, "max-buffered-bytes", "memory for frames waiting for Kafka; beyond it frames are shed (counted)")
	fs.StringVar(&cfg.Compression, "compression", cfg.Compression, "Kafka compression: lz4 or zstd")
	fs.DurationVar(&cfg.StatsInterval, "stats-interval", cfg.StatsInterval, "period of stats messages")
	fs.DurationVar(&cfg.FlushTimeout, "flush-timeout", cfg.FlushTimeout, "how long shutdown waits for Kafka to acknowledge")
	metrics := addMetricsFlags(fs, ":9464")
	fs.StringVar(&cfg.Pcap, "pcap", "", "replay this capture (pcap or pcapng, Ethernet) instead of attaching")
	fs.StringVar(&cfg.PinDir, "pin-dir", pinDirAuto, "bpffs directory the run is pinned in, so it outlives the process ("+pinDirAuto+": /sys/fs/bpf/packetlake/IF, or .../netns/NS/IF, unpinned with a warning if it cannot be made; '': no pinning)")
	onStop := fs.String("on-stop", "keep", "what SIGTERM does with the pinned program: keep (it goes on recording for the next collect) or detach (end the run)")
	detach := fs.Bool("detach", false, "end the run pinned for --iface and exit: drain, final stats, detach, unpin")
	logf := addLogFlags(fs)
	return fs, func(ctx context.Context) error {
		if fs.NArg() > 0 {
			fs.Usage()
			return fmt.Errorf("unexpected arguments %q", fs.Args())
		}
		if cfg.Iface == "" && cfg.Pcap == "" {
			fs.Usage()
			return errors.New("--iface (or --pcap) is required")
		}
		if len(kafka.Brokers) == 0 {
			fs.Usage()
			return errors.New("--brokers is required")
		}
		cfg.Kafka = *kafka
		cfg.RingBytes, cfg.MaxBufferedBytes, cfg.FrameMaxBytes = int(ring), int(maxBuf), int(frameBytes)
		autoPins := cfg.PinDir == pinDirAuto
		if err := setPinning(&cfg, *onStop, *detach); err != nil {
			fs.Usage()
			return err
		}
		if err := bpf.CheckCaps(); err != nil {
			return err
		}

		logger, err := logf.logger()
		if err != nil {
			return err
		}
		reg := newRegistry()
		c, err := collector.New(cfg, collector.Dependencies{Logger: logger, Registerer: reg})
		if err != nil {
			return err
		}
		if *detach {
			err := c.DetachPinned(ctx)
			if errors.Is(err, collector.ErrNothingPinned) {
				logger.Info("nothing pinned: nothing to detach", "pin_dir", cfg.PinDir)
				return nil
			}
			if err == nil && autoPins {
				removeEmptyNetnsPinDir(cfg)
			}
			return err
		}
		err = runDaemon(ctx, c, c.Done(), "signal received: shipping what was read", *metrics, reg, logger)
		err = errors.Join(c.Err(), err)
		if err == nil && autoPins && cfg.DetachOnStop {
			removeEmptyNetnsPinDir(cfg)
		}
		return err
	}
}

// pinDirAuto is --pin-dir's default: a directory per interface (and network namespace).
const pinDirAuto = "auto"

// removeEmptyNetnsPinDir removes the automatic layout's .../netns/NS directory once a detach
// removed the interface's directory in it: a directory per namespace (a pod's, a test's) would
// otherwise pile up in bpffs. rmdir only: another interface of the namespace still pinned
// keeps it (ENOTEMPTY), and nothing in it is ever removed here.
func removeEmptyNetnsPinDir(cfg collector.Config) {
	if cfg.NetNS == "" || cfg.PinDir == "" {
		return
	}
	_ = os.Remove(filepath.Dir(cfg.PinDir))
}

// setPinning turns --pin-dir, --on-stop and --detach into the collector's Config.
func setPinning(cfg *collector.Config, onStop string, detach bool) error {
	switch {
	case cfg.Pcap != "":
		cfg.PinDir = "" // a replay ends with its capture: nothing to keep
	case cfg.PinDir == pinDirAuto:
		cfg.PinBestEffort = true // pinned where the host allows it; unpinned, with a warning, elsewhere
		cfg.PinDir = filepath.Join(bpf.BPFFSRoot, "packetlake", cfg.Iface)
		if cfg.NetNS != "" {
			cfg.PinDir = filepath.Join(bpf.BPFFSRoot, "packetlake", "netns", cfg.NetNS, cfg.Iface)
		}
	}
	switch onStop {
	case "keep":
	case "detach":
		cfg.DetachOnStop = true
	default:
		return fmt.Errorf("--on-stop %q: want keep or detach", onStop)
	}
	if detach && cfg.PinDir == "" {
		return errors.New("--detach needs a pin directory (--pin-dir) and no --pcap")
	}
	return nil
}
