package collector

import (
	"context"
	"errors"
	"fmt"

	"github.com/packetlake/packetlake/bpf"
)

// ErrNothingPinned: DetachPinned found no run in the pin directory.
var ErrNothingPinned = errors.New("nothing is pinned there")

// pinned reports whether this collector keeps its run in a pin directory (Config.PinDir, live).
func (c *Collector) pinned() bool {
	return c.cfg.PinDir != "" && c.cfg.Pcap == "" && !c.noAttach
}

// bpfConfig is what the program is loaded with.
func (c *Collector) bpfConfig() bpf.Config {
	return bpf.Config{RingBytes: c.cfg.RingBytes, WakeupBytes: c.cfg.WakeupBytes,
		FlowEntries: c.cfg.FlowEntries, SampleMax: c.cfg.SampleMax, XDPFrags: c.cfg.XDPFrags, NoTLSCont: c.cfg.NoTLSReassembly}
}

// attachment is where the program goes (Validate has checked XDPMode).
func (c *Collector) attachment() bpf.Attachment {
	mode, _ := xdpMode(c.cfg.XDPMode)
	if c.cfg.Hook == "tc" {
		mode = bpf.XDPAuto
	}
	return bpf.Attachment{Hook: c.cfg.Hook, XDPMode: mode, Ifindex: c.ifindex}
}

// openPin locks the pin directory (one collector per run) and looks at what it holds: a run
// this binary would load exactly is adopted (c.pin, c.objs and the run state set); any other is
// ended and removed (pinreplace.go), leaving Start to load and pin a new one.
func (c *Collector) openPin(ctx context.Context) error {
	unlock, err := c.preparePinDir()
	if err != nil {
		if !c.cfg.PinBestEffort || errors.Is(err, bpf.ErrPinDirInUse) {
			return err
		}
		c.log.Warn("cannot pin the program: it will detach when this process ends (a restart loses the gap)",
			"pin_dir", c.cfg.PinDir, "err", err)
		c.cfg.PinDir = ""
		return nil
	}
	c.unlockPin = unlock
	p, err := bpf.OpenPinned(c.cfg.PinDir)
	if err != nil || p == nil {
		return err
	}
	reason, detail := p.Mismatch(c.bpfConfig(), c.attachment())
	st := runStateIn(p.Run)
	if reason == "" && st.magic.Load() != runStateMagic {
		reason, detail = "run_state", "the pinned run state is of another layout than this binary keeps"
	}
	if reason != "" {
		return c.replacePinned(ctx, p, reason, detail)
	}
	st.settle()
	st.processes.Add(1)
	c.useState(st)
	c.pin, c.adopted = p, true
	c.objsMu.Lock()
	c.objs = p.Objs
	c.objsMu.Unlock()
	c.metrics.adoptions.Inc()
	r := st.read()
	c.log.Info("adopted the pinned program: the run continues", "pin_dir", c.cfg.PinDir, "next_seq", r.Seq,
		"processes", st.processes.Load())
	return nil
}

// preparePinDir mounts bpffs if needed, creates the pin directory and locks it.
func (c *Collector) preparePinDir() (unlock func(), err error) {
	if err := bpf.MountBPFFS(c.cfg.PinDir); err != nil {
		return nil, err
	}
	return bpf.LockPinDir(c.cfg.PinDir)
}

// pinNew pins the objects Start just loaded and attached, with a new run state carrying the
// collector_id New drew, then hands the link to the pin.
func (c *Collector) pinNew() error {
	p, err := c.objs.Pin(c.cfg.PinDir, c.link, c.bpfConfig(), c.attachment())
	if err != nil {
		return fmt.Errorf("pin the program in %s: %w", c.cfg.PinDir, err)
	}
	st := runStateIn(p.Run)
	st.collectorID, st.startedNs = c.state.collectorID, c.state.startedNs
	st.processes.Store(1)
	st.magic.Store(runStateMagic)
	c.useState(st)
	c.pin, c.link = p, nil
	c.log.Info("program pinned: it stays attached when this process ends", "pin_dir", c.cfg.PinDir,
		"detach_on_stop", c.cfg.DetachOnStop)
	return nil
}

// resume puts an adopted ring's reader where the last process recorded it had read (it may have
// died after recording and before giving the space back) and settles, with Kafka, the records
// that process read but never saw acknowledged.
func (c *Collector) resume(ctx context.Context, rd *bpf.Ring) error {
	r := c.state.read()
	if cons := rd.Consumed(); r.Pos != cons {
		if err := rd.Resume(r.Pos); err != nil {
			return fmt.Errorf("adopt the pinned ring: %w", err)
		}
		c.log.Info("ring resumed at the recorded read position", "skipped_bytes", r.Pos-cons)
	}
	c.log.Info("ring adopted", "unread_bytes", rd.AvailableBytes(), "next_seq", r.Seq)
	return c.reconcile(ctx, c.state)
}

// DetachPinned ends the run pinned in Config.PinDir for good: it adopts it (or, if this binary
// would not load it, ends it as a replacement would), ships what the ring and the CPUs' batches
// hold, publishes the final stats, detaches the program and removes the pins. ErrNothingPinned
// if there is no run.
func (c *Collector) DetachPinned(ctx context.Context) error {
	if c.cfg.PinDir == "" || c.cfg.Pcap != "" {
		return errors.New("detach: no pin directory (set PinDir, and no Pcap)")
	}
	c.cfg.DetachOnStop, c.detachOnly = true, true
	err := c.Start(ctx)
	if err != nil {
		// No run to end: tracing programs pinned without one (their run replaced, a partial pin) go too.
		if rerr := bpf.RemovePinnedTracing(c.cfg.PinDir); rerr != nil {
			c.log.Warn("remove the pinned tracing programs", "err", rerr)
		}
	}
	if errors.Is(err, ErrNothingPinned) && c.replaced {
		return nil // a pin of another binary was ended and removed: nothing is left attached
	}
	if err != nil {
		return err
	}
	return c.Stop()
}
