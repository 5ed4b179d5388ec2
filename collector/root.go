// Package collector records packets with the BPF program and ships them to Kafka: it attaches
// the program to an interface (or replays a capture through it), drains the ring buffer into
// record.Frames, produces them without ever blocking the drain (shedding, counted, when Kafka
// cannot keep up), and publishes its own and the kernel's counters to a stats topic and to
// Prometheus.
package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cilium/ebpf/link"
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
	id      uint64    // collector_id: random per run, so (host, collector_id, seq) is unique
	state   *runState // the run's state: on the heap, or pinned (runstate.go)
	logBase *slog.Logger
	iface   string // frames' iface: Config.Iface, or the capture's file name
	ifindex int    // live mode
	prod    *producer
	n       counters
	fn      flowCounters

	flows       *flowExporter // nil when FlowsTopic is empty
	flowsCancel context.CancelFunc
	flowsDone   chan struct{}
	drops       *dropExporter // nil unless Config.Drops in live mode (drops.go)
	dropsCancel context.CancelFunc
	dropsDone   chan struct{}
	offset      atomic.Int64 // last clock offset stamped on a frame, for stats
	// recvTracer is the receiver tracer while it is loaded (Config.Receivers), for /metrics.
	recvTracer atomic.Pointer[bpf.Receivers]

	objsMu sync.Mutex // guards objs and rd against Stop while stats read them
	objs   *bpf.Objects
	rd     *bpf.Ring // live mode only
	link   link.Link // unpinned runs; a pinned run's link is pin.Link
	// pin holds a pinned run (Config.PinDir): adopted from an earlier process or pinned by Start.
	pin       *bpf.Pinned
	unlockPin func()
	adopted   bool
	replaced  bool // Start ended a pinned run this binary would not adopt
	removePin bool // Stop ends the pinned run: release removes the pins
	// detachOnly: Start adopts (or replaces) what is pinned and loads nothing new (DetachPinned).
	detachOnly bool
	// finalKernel keeps the kernel counters read just before Stop unloads the program.
	finalKernel *record.Stats

	// noAttach loads and drains but attaches nothing: tests and benchmarks feed the live path
	// with BPF_PROG_TEST_RUN instead of an interface's traffic.
	noAttach bool

	started     atomic.Bool
	stopping    atomic.Bool // the source's loop ends at its next read
	leaving     atomic.Bool // Stop keeps the pinned program: the loop ends after the sample it has
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
	st, err := newRunState(new(runState))
	if err != nil {
		return nil, err
	}
	c.logBase = logger
	c.useState(st)
	c.metrics = newMetrics(c)
	if c.prod, err = newProducer(cfg, c.iface, &c.n, c.kafkaDeps()); err != nil {
		return nil, err
	}
	c.prod.st = st
	if err := reg.Register(c.metrics); err != nil {
		c.prod.cl.Close()
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	return c, nil
}

// kafkaDeps is what every Kafka client of the collector (frames and stats, flows) reports
// through: its logger and its connection counters. The logger names no collector_id: the
// frames' client is made in New, before Start may adopt a pinned run of another id.
func (c *Collector) kafkaDeps() kafkaconn.Deps {
	return kafkaconn.Deps{Logger: c.logBase.With("host", c.cfg.Host, "iface", c.iface), Metrics: c.metrics.kafka}
}

// useState makes st the run this collector carries on: its collector_id and counters. Only
// before the source and the stats loop start.
func (c *Collector) useState(st *runState) {
	c.state, c.id = st, st.collectorID
	c.n.userCounters, c.fn.flowTotals = &st.user, &st.flow
	if c.prod != nil {
		c.prod.st = st
	}
	c.log = c.logBase.With("host", c.cfg.Host, "iface", c.iface, "collector_id", c.id)
}

// ID is this run's collector_id: random from New, or after Start, that of the pinned run it
// adopted.
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
	if c.pinned() {
		if err := c.openPin(ctx); err != nil {
			return err
		}
	}
	objs := c.objs
	if objs == nil {
		if c.detachOnly {
			return ErrNothingPinned
		}
		if objs, err = bpf.Load(c.bpfConfig()); err != nil {
			return fmt.Errorf("load BPF program: %w", err)
		}
		c.objsMu.Lock()
		c.objs = objs
		c.objsMu.Unlock()
	}

	var run func() error
	if c.cfg.Pcap != "" {
		f := c.newFramer()
		run = func() error { return c.replay(f) }
	} else {
		rd, err := bpf.NewRing(objs.Events())
		if err != nil {
			return fmt.Errorf("ring buffer reader: %w", err)
		}
		c.objsMu.Lock()
		c.rd = rd
		c.objsMu.Unlock()
		if c.adopted {
			if err := c.resume(ctx, rd); err != nil {
				return err
			}
		} else if !c.noAttach {
			if c.link, err = c.attach(objs); err != nil {
				return err
			}
			if c.pinned() {
				if err := c.pinNew(); err != nil {
					return err
				}
			}
		}
		f := c.newFramer()
		run = func() error { return c.drain(rd, f) }
	}
	if err := c.startFlows(); err != nil {
		return err
	}
	if err := c.startDrops(); err != nil {
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
	c.log.Info("collector started", "mode", c.mode(), "topic", c.cfg.Topic, "brokers", c.cfg.Kafka.Brokers,
		"pin_dir", c.cfg.PinDir, "adopted", c.adopted)
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
