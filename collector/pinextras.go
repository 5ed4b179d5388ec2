package collector

import (
	"github.com/packetlake/packetlake/bpf"
)

// The drop-reason program and the receiver tracer of a pinned run are pinned beside its packet
// program (bpf/pin_extra.go): adopted by the next process when they are what it would load,
// replaced otherwise, removed when the feature is off or the run ends (Stop with DetachOnStop,
// DetachPinned).

// loadDrops adopts the drop-reason program pinned with the run, or loads one (and pins it with
// a pinned run). nil, nil: the kernel refused it (logged), or DetachPinned found none to end.
func (c *Collector) loadDrops() (*bpf.Drops, error) {
	cfg := bpf.DropsConfig{Entries: c.cfg.DropEntries}
	if c.pin != nil {
		d, reason, err := bpf.OpenPinnedDrops(c.cfg.PinDir, cfg)
		if err != nil {
			return nil, err
		}
		if d != nil {
			c.log.Info("adopted the pinned drop-reason program: its counts go on", "pin_dir", c.cfg.PinDir)
			return d, nil
		}
		if reason != "none" {
			c.log.Warn("replacing the pinned drop-reason program: its drops since its last acknowledged export are not exported",
				"pin_dir", c.cfg.PinDir, "reason", reason)
			c.metrics.replacements.WithLabelValues("drops_" + reason).Inc()
		}
		if c.detachOnly {
			return nil, nil
		}
	}
	d, err := bpf.LoadDrops(cfg)
	if err != nil {
		c.log.Warn("kernel drop reasons off: the kernel refused the tracepoint program", "err", err)
		return nil, nil
	}
	if c.pin != nil {
		if err := d.Pin(c.cfg.PinDir); err != nil {
			c.log.Warn("drops: cannot pin the drop-reason program: drops while no collector runs are not counted", "err", err)
		}
	}
	return d, nil
}

// removePinnedDrops ends a drop-reason program pinned with the run (the feature is off now).
func (c *Collector) removePinnedDrops() {
	if c.pin == nil {
		return
	}
	if err := bpf.RemovePinnedDrops(c.cfg.PinDir); err != nil {
		c.log.Warn("drops: remove the pinned drop-reason program", "err", err)
	}
}

// loadReceivers adopts the receiver tracer pinned with the run, or loads one (and pins it with
// a pinned run).
func (c *Collector) loadReceivers() (*bpf.Receivers, error) {
	if c.pin != nil {
		r, reason, err := bpf.OpenPinnedReceivers(c.cfg.PinDir, c.cfg.ReceiverEntries)
		if err != nil {
			return nil, err
		}
		if r != nil {
			c.log.Info("adopted the pinned receiver tracer: sockets read before the restart are still named", "pin_dir", c.cfg.PinDir)
			return r, nil
		}
		if reason != "none" {
			c.log.Warn("replacing the pinned receiver tracer", "pin_dir", c.cfg.PinDir, "reason", reason)
			c.metrics.replacements.WithLabelValues("receivers_" + reason).Inc()
		}
	}
	r, err := bpf.LoadReceivers(c.cfg.ReceiverEntries)
	if err != nil {
		return nil, err
	}
	if c.pin != nil {
		if err := r.Pin(c.cfg.PinDir, c.cfg.ReceiverEntries); err != nil {
			c.log.Warn("receivers: cannot pin the tracer: sockets read before a restart will not be named", "err", err)
		}
	}
	return r, nil
}

// removePinnedReceivers ends a receiver tracer pinned with the run (the feature is off now).
func (c *Collector) removePinnedReceivers() {
	if c.pin == nil {
		return
	}
	if err := bpf.RemovePinnedReceivers(c.cfg.PinDir); err != nil {
		c.log.Warn("receivers: remove the pinned tracer", "err", err)
	}
}
