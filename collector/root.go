// Package collector records packets with the BPF program and ships them to Kafka: it attaches
// the program to an interface (or replays a capture through it), drains the ring buffer into
// record.Frames, produces them without ever blocking the drain (shedding, counted, when Kafka
// cannot keep up), and publishes its own and the kernel's counters to a stats topic and to
// Prometheus.
package collector

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/packetlake/packetlake/internal/kafkaconn"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/packetlake/packetlake/bpf"
	"github.com/packetlake/packetlake/internal/lifecycle"
	"github.com/packetlake/packetlake/internal/netns"
	"github.com/packetlake/packetlake/record"
)

// Dependencies are what a Collector uses but does not own.
type Dependencies struct {
	Logger     *slog.Logger          // nil discards
	Registerer prometheus.Registerer // nil registers nowhere
}

// Collector is one run of the collector on one interface (or capture).
type Collector struct {
	cfg     Config
	log     *slog.Logger
	reg     prometheus.Registerer
	metrics *metrics
	id      uint64 // collector_id: random per run, so (host, collector_id, seq) is unique
	iface   string // frames' iface: Config.Iface, or the capture's file name
	ifindex int    // live mode
	prod    *producer
	n       counters
	fn      flowCounters

	flows       *flowExporter // nil when FlowsTopic is empty
	flowsCancel context.CancelFunc
	flowsDone   chan struct{}
	offset      atomic.Int64 // last clock offset stamped on a frame, for stats

	objsMu sync.Mutex // guards objs and rd against Stop while stats read them
	objs   *bpf.Objects
	rd     *ringbuf.Reader // live mode only
	link   link.Link
	// finalKernel keeps the kernel counters read just before Stop unloads the program.
	finalKernel *record.Stats

	// noAttach loads and drains but attaches nothing: tests and benchmarks feed the live path
	// with BPF_PROG_TEST_RUN instead of an interface's traffic.
	noAttach bool

	started     atomic.Bool
	stopping    atomic.Bool // the source's loop ends at its next read
	phase       lifecycle.Phase
	done        chan struct{} // closed when the source goroutine has returned
	err         error         // its error, readable after done
	statsCancel context.CancelFunc
	statsDone   chan struct{}

	stopOnce sync.Once
	stopErr  error
}

// New checks cfg and prepares a collector; nothing is loaded or attached before Start.
func New(cfg Config, deps Dependencies) (*Collector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("collector config: %w", err)
	}
	logger, reg := deps.Logger, deps.Registerer
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry() // Stop unregisters: a private one is as good as none
	}
	c := &Collector{cfg: cfg, reg: reg, iface: cfg.Iface, done: make(chan struct{})}
	if cfg.Pcap == "" {
		var ifi *net.Interface
		err := netns.Do(cfg.NetNS, func() (err error) {
			ifi, err = net.InterfaceByName(cfg.Iface)
			return err
		})
		if err != nil {
			if strings.Contains(err.Error(), "no such network interface") {
				return nil, fmt.Errorf("interface %q does not exist in this network namespace (`ip link` lists them)", cfg.Iface)
			}
			return nil, fmt.Errorf("interface %q: %w", cfg.Iface, err)
		}
		c.ifindex = ifi.Index
	} else if c.iface == "" {
		c.iface = filepath.Base(cfg.Pcap)
		if len(c.iface) > 255 { // the frame header's limit
			c.iface = c.iface[:255]
		}
	}
	var idb [8]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return nil, fmt.Errorf("collector id: %w", err)
	}
	c.id = binary.LittleEndian.Uint64(idb[:])
	c.log = logger.With("host", cfg.Host, "iface", c.iface, "collector_id", c.id)
	c.metrics = newMetrics(c)
	var err error
	if c.prod, err = newProducer(cfg, c.iface, &c.n, c.kafkaDeps()); err != nil {
		return nil, err
	}
	if err := reg.Register(c.metrics); err != nil {
		c.prod.cl.Close()
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	return c, nil
}

// kafkaDeps is what every Kafka client of the collector (frames and stats, flows) reports
// through: its logger and its connection counters.
func (c *Collector) kafkaDeps() kafkaconn.Deps {
	return kafkaconn.Deps{Logger: c.log, Metrics: c.metrics.kafka}
}

// ID is this run's collector_id.
func (c *Collector) ID() uint64 { return c.id }

// mode names the source for stats.
func (c *Collector) mode() string {
	if c.cfg.Pcap != "" {
		return "pcap"
	}
	return c.cfg.Hook
}

// Start loads the program, attaches it (or starts the replay) and starts draining and the
// stats loop. On error nothing is left loaded or attached.
func (c *Collector) Start(ctx context.Context) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !c.started.CompareAndSwap(false, true) {
		return errors.New("collector already started")
	}
	defer func() {
		if err != nil {
			c.release()
		}
	}()
	objs, err := bpf.Load(bpf.Config{RingBytes: c.cfg.RingBytes, WakeupBytes: c.cfg.WakeupBytes,
		FlowEntries: c.cfg.FlowEntries, SampleMax: c.cfg.SampleMax, XDPFrags: c.cfg.XDPFrags})
	if err != nil {
		return fmt.Errorf("load BPF program: %w", err)
	}
	c.objsMu.Lock()
	c.objs = objs
	c.objsMu.Unlock()

	f := c.newFramer()
	var run func() error
	if c.cfg.Pcap != "" {
		run = func() error { return c.replay(f) }
	} else {
		rd, err := ringbuf.NewReader(objs.Events())
		if err != nil {
			return fmt.Errorf("ring buffer reader: %w", err)
		}
		c.objsMu.Lock()
		c.rd = rd
		c.objsMu.Unlock()
		if !c.noAttach {
			if c.link, err = c.attach(objs); err != nil {
				return err
			}
		}
		run = func() error { return c.drain(rd, f) }
	}
	if err := c.startFlows(); err != nil {
		return err
	}
	go func() {
		defer close(c.done)
		c.err = run()
		if c.err != nil {
			c.log.Error("collector source stopped", "err", c.err)
		}
	}()
	statsCtx, cancel := context.WithCancel(context.Background())
	c.statsCancel, c.statsDone = cancel, make(chan struct{})
	go func() {
		defer close(c.statsDone)
		c.statsLoop(statsCtx)
	}()
	go c.checkTopics(statsCtx)
	c.phase.SetRunning()
	c.log.Info("collector started", "mode", c.mode(), "topic", c.cfg.Topic, "brokers", c.cfg.Kafka.Brokers)
	return nil
}

// Ready is nil while the source drains the ring (or replays the capture), else why not: an
// orchestrator restarts a collector whose drain died.
func (c *Collector) Ready() error {
	select {
	case <-c.done:
		if c.err != nil {
			return fmt.Errorf("source stopped: %w", c.err)
		}
		return errors.New("source ended")
	default:
	}
	return c.phase.Ready()
}

// attach puts the program on the interface.
func (c *Collector) attach(objs *bpf.Objects) (link.Link, error) {
	var l link.Link
	err := netns.Do(c.cfg.NetNS, func() (err error) {
		l, err = c.attachHere(objs)
		return err
	})
	return l, err
}

// attachHere attaches in the calling thread's network namespace.
func (c *Collector) attachHere(objs *bpf.Objects) (link.Link, error) {
	if c.cfg.Hook == "tc" {
		l, err := objs.AttachTC(c.ifindex)
		if err != nil {
			return nil, fmt.Errorf("attach tc to %s: %w", c.cfg.Iface, err)
		}
		return l, nil
	}
	mode, err := xdpMode(c.cfg.XDPMode)
	if err != nil {
		return nil, err
	}
	l, err := objs.AttachXDP(c.ifindex, mode)
	if err != nil {
		return nil, fmt.Errorf("attach xdp (%s) to %s: %w", c.cfg.XDPMode, c.cfg.Iface, err)
	}
	// pl_xdp_linear keeps the interface's MTU within one buffer while attached (collector
	// Config.XDPFrags); an operator raising it should know why the kernel refuses.
	c.log.Info("xdp program attached", "iface", c.cfg.Iface, "mode", c.cfg.XDPMode, "program", objs.XDPProgram(l),
		"frags", c.cfg.XDPFrags)
	return l, nil
}
