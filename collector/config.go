package collector

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/packetlake/packetlake/internal/kafkaconn"
)

// Config configures a Collector. Start from DefaultConfig: the zero value is not usable.
type Config struct {
	// Iface is the network interface whose packets are recorded. Required unless Pcap is set;
	// with Pcap it only names the frames' iface (default: the capture file's base name).
	Iface string
	// NetNS, when set, is the network namespace (a name under /run/netns) that Iface lives in.
	// The collector attaches there and keeps talking to Kafka from its own namespace.
	NetNS string
	// Hook is where the program runs: "xdp" (ingress, before the kernel's stack; cheapest) or
	// "tc" (tcx ingress, after GRO and VLAN offload; works on every device).
	Hook string
	// XDPMode picks the XDP attach mode: "auto" (native when the driver has it, else generic),
	// "native" or "generic". Ignored for the tc hook.
	XDPMode string
	// XDPFrags attaches the frags-aware XDP program even where the MTU fits one buffer, so the
	// MTU can later be raised past ~3.5 KiB (jumbo frames) without detaching; otherwise the
	// kernel refuses such an MTU change while the collector runs. Costs ~8 ns per packet.
	XDPFrags bool

	// Kafka is the brokers (required) and their TLS and SASL settings (zero: plaintext, no
	// authentication).
	Kafka kafkaconn.Config
	// Topic receives the packet frames (one Kafka record = one record.Frame).
	Topic string
	// StatsTopic receives one JSON Stats message every StatsInterval.
	StatsTopic string
	// Host names this machine in every frame and stats message (default: os.Hostname()).
	Host string

	// RingBytes is the size of the BPF ring buffer, a power of two and a multiple of the page
	// size. It absorbs reader pauses: at 2 Mpps a 4 MiB ring holds ~30 ms, 64 MiB ~0.5 s.
	RingBytes int
	// WakeupBytes is the ring fill level at which the program wakes the reader; 0 leaves the
	// bpf package's default. Below it the reader finds records by polling (every
	// min(FrameMaxAge/2, 50 ms)).
	WakeupBytes int

	// FrameMaxBytes flushes a frame once adding a sample would take it past this size. Bigger
	// frames cost Kafka less per record; it must stay under the broker's max.message.bytes.
	FrameMaxBytes int
	// FrameMaxAge flushes a frame this long after its first sample, so a quiet interface still
	// delivers its records promptly (worst case FrameMaxAge plus one ring poll, ≤ 50 ms).
	FrameMaxAge time.Duration
	// MaxBufferedBytes caps the memory held by frames waiting for Kafka. A frame that would
	// exceed it is shed (dropped and counted in records_shed) instead of blocking the ring
	// drain: a slow or absent broker costs records, never the collector's memory or liveness.
	MaxBufferedBytes int
	// Compression of the Kafka batches: "lz4" (cheapest CPU) or "zstd" (smallest).
	Compression string
	// FlushTimeout bounds how long Stop waits for Kafka to acknowledge buffered frames; frames
	// still unacknowledged then are failed and counted as produce errors ("aborted").
	FlushTimeout time.Duration

	// StatsInterval is the period of the stats messages.
	StatsInterval time.Duration
	// ClockRefresh is how often the wall-clock − monotonic offset is measured again (see
	// clock.go); each frame carries the offset measured last before it started.
	ClockRefresh time.Duration

	// FlowsTopic receives the exact flow counters (FlowMessage, JSON) every FlowInterval; ""
	// exports none (the kernel still counts them).
	FlowsTopic string
	// FlowInterval is the period of the flow exports.
	FlowInterval time.Duration
	// FlowIdle: a flow without packets for this long has its kernel bucket retired after its
	// last counts are exported, and freed one export later (a later packet starts it again in a
	// new bucket, from zero).
	FlowIdle time.Duration
	// FlowEntries is how many flows each of the kernel's two flow tables (IPv4, IPv6 and non-IP)
	// holds at once; 0 leaves the bpf package's default (49152: 65536 buckets). Memory: 4/3 as many buckets,
	// rounded up to a power of two, of ~48 B per possible CPU each, per table. When more flows
	// are active within FlowIdle, new ones may find no bucket: their packets count in
	// kernel_flow_failed, nothing already counted is lost.
	FlowEntries int
	// Receivers names, on every exported TCP/UDP flow, the process that reads the socket its
	// packets are delivered to (pid, command, cgroup id and path, container id, pod uid): a
	// tracing program on the raw tracepoint sock:sock_recv_length (Linux 6.5+) remembers the
	// reader per socket, and each export joins it to the flows (receivers.go). Needs FlowsTopic.
	// Off by default: it runs on every successful socket read of the host.
	Receivers bool
	// ReceiverEntries is how many sockets the kernel remembers at once (LRU); 0: the bpf
	// package's default (16384).
	ReceiverEntries int
	// SampleMax bounds the kernel's adaptive sampling of ordinary packets' records under ring
	// pressure (1 in up to SampleMax); 0 leaves the bpf default (64), 1 disables sampling.
	SampleMax int
	// NoTLSReassembly stops the kernel from copying the segments that carry the rest of a TLS
	// ClientHello record longer than its first segment (bpf/tls_cont.h): such hellos then get
	// no JA4 (and no SNI when it lies beyond the first segment).
	NoTLSReassembly bool

	// Drops counts the packets the kernel drops after the program saw them, per drop reason
	// and flow (a tracepoint program on skb:kfree_skb, bpf/drops.c; it runs only when the kernel
	// drops a packet), and sends the counts to DropsTopic every FlowInterval. Live mode only.
	Drops bool
	// DropsTopic receives the drop counts (record.DropMessage, JSON); "" exports none (and loads
	// no program).
	DropsTopic string
	// DropEntries bounds the (reason, flow) pairs the kernel counts; 0 leaves the bpf default
	// (4096). Drops that find it full are counted under the reason MAP_FULL.
	DropEntries int

	// PinDir, when set, keeps the run in this bpffs directory (live mode): the program, its link,
	// the ring buffer, the counters, the flow tables and the run's state (collector_id, where the
	// ring was read up to, every stats counter) are pinned there, so the program stays attached
	// when the process dies. The next collector started with the same PinDir adopts them and
	// continues the run: same collector_id, seq going on, the records written meanwhile read from
	// the ring, the packets the ring could not hold counted in kernel_ring_full. A pin this
	// binary would not load exactly (another record layout, program build or setting) is
	// replaced: its run is ended with a final stats message, then a new one starts. bpffs is
	// mounted at /sys/fs/bpf if PinDir lies under it and nothing is mounted there.
	PinDir string
	// PinBestEffort: a PinDir that cannot be set up (no bpffs and no right to mount one, no
	// right to create the directory) leaves the run unpinned, with a warning, instead of failing
	// Start. The command line's default --pin-dir (auto) sets it; a PinDir the operator names
	// must work.
	PinBestEffort bool
	// DetachOnStop makes Stop end a pinned run: detach, drain the ring and the CPUs' batches,
	// publish the final stats, remove the pins. Otherwise Stop (SIGTERM) leaves the program
	// attached and pinned for the next collector (an upgrade, a restart), after shipping what it
	// read. Without PinDir, Stop always detaches.
	DetachOnStop bool

	// Pcap, when set, replays this capture file (pcap or pcapng, Ethernet) through the same BPF
	// program with BPF_PROG_TEST_RUN instead of attaching to an interface. Records carry the
	// capture's timestamps (frames flagged record.FrameWallClock).
	Pcap string
}

// DefaultConfig returns the defaults; only Iface (or Pcap) and Kafka.Brokers are left to set.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		Hook:             "xdp",
		XDPMode:          "auto",
		Topic:            "packets",
		StatsTopic:       "packetlake-stats",
		Host:             host,
		RingBytes:        64 << 20, // INFRA: 64 MiB lost nothing across 200 ms reader pauses at 2 Mpps
		FrameMaxBytes:    256 << 10,
		FrameMaxAge:      100 * time.Millisecond,
		MaxBufferedBytes: 128 << 20,
		Compression:      "lz4",
		FlushTimeout:     10 * time.Second,
		StatsInterval:    5 * time.Second,
		FlowsTopic:       "packetlake-flows",
		FlowInterval:     5 * time.Second,
		FlowIdle:         30 * time.Second,
		Drops:            true,
		DropsTopic:       "packetlake-drops",
		ClockRefresh:     time.Second,
	}
}

// maxFrameBytes keeps a frame, with Kafka's batch overhead, under the broker's default
// max.message.bytes (1 MB) and franz-go's default batch cap.
const maxFrameBytes = 900 << 10

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	if c.Pcap == "" && c.Iface == "" {
		return errors.New("no interface: set Iface (or Pcap to replay a capture)")
	}
	switch c.Hook {
	case "xdp", "tc":
	default:
		return fmt.Errorf("hook %q: want xdp or tc", c.Hook)
	}
	switch c.XDPMode {
	case "auto", "native", "generic":
	default:
		return fmt.Errorf("xdp mode %q: want auto, native or generic", c.XDPMode)
	}
	if err := c.Kafka.Validate(); err != nil {
		return err
	}
	if c.Topic == "" || c.StatsTopic == "" {
		return errors.New("topic and stats topic must be set")
	}
	if c.Host == "" || len(c.Host) > 255 {
		return fmt.Errorf("host %q: must be 1 to 255 bytes", c.Host)
	}
	if len(c.Iface) > 255 {
		return fmt.Errorf("iface %q: longer than 255 bytes", c.Iface)
	}
	if c.RingBytes < 4096 || c.RingBytes&(c.RingBytes-1) != 0 {
		return fmt.Errorf("ring bytes %d: must be a power of two of at least 4096", c.RingBytes)
	}
	if c.FrameMaxBytes < 4096 || c.FrameMaxBytes > maxFrameBytes {
		return fmt.Errorf("frame max bytes %d: must be between 4096 and %d", c.FrameMaxBytes, maxFrameBytes)
	}
	if c.FrameMaxAge <= 0 {
		return errors.New("frame max age must be positive")
	}
	if c.MaxBufferedBytes < 2*c.FrameMaxBytes {
		return fmt.Errorf("max buffered bytes %d: must hold at least two frames (%d)", c.MaxBufferedBytes, 2*c.FrameMaxBytes)
	}
	switch c.Compression {
	case "lz4", "zstd":
	default:
		return fmt.Errorf("compression %q: want lz4 or zstd", c.Compression)
	}
	if c.FlowsTopic != "" && (c.FlowInterval <= 0 || c.FlowIdle <= 0) {
		return errors.New("flow interval and flow idle must be positive")
	}
	if c.FlowsTopic != "" && (c.FlowsTopic == c.Topic || c.FlowsTopic == c.StatsTopic) {
		return fmt.Errorf("flows topic %q: must differ from the packet and stats topics", c.FlowsTopic)
	}
	if c.Receivers && (c.FlowsTopic == "" || c.Pcap != "") {
		return errors.New("receivers name the processes of a live interface's exported flows: they need a flows topic and no pcap")
	}
	if c.FlowEntries < 0 || c.SampleMax < 0 || c.ReceiverEntries < 0 {
		return errors.New("flow entries, receiver entries and sample max must not be negative")
	}
	if err := c.validateDrops(); err != nil {
		return err
	}
	if c.PinDir != "" && !filepath.IsAbs(c.PinDir) {
		return fmt.Errorf("pin dir %q: must be an absolute path on a bpffs", c.PinDir)
	}
	if c.StatsInterval <= 0 || c.ClockRefresh <= 0 || c.FlushTimeout <= 0 {
		return errors.New("stats interval, clock refresh and flush timeout must be positive")
	}
	return nil
}
