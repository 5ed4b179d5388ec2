package collector

import (
	"context"
	"errors"
	"fmt"

	"github.com/packetlake/packetlake/record"
)

// Done is closed when the source has ended: the capture is replayed, or the live drain failed
// (see Err). A live collector otherwise runs until Stop.
func (c *Collector) Done() <-chan struct{} { return c.done }

// Err is the source's error once Done is closed; nil for a capture replayed to its end.
func (c *Collector) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Stop ends this process's part of the run; idempotent. Unpinned, or pinned with DetachOnStop,
// it ends the run: it detaches the program first (no packet is recorded after it returns, and
// nothing is left attached), drains what the ring and the CPUs' batches still hold into a last
// frame, makes the last flow export, publishes final stats, waits up to FlushTimeout for Kafka
// to acknowledge, releases everything and removes the pins. Pinned without DetachOnStop, the
// program stays attached and recording into the pinned ring: Stop ships the frame it was
// building, exports the flows, publishes stats, waits for Kafka, and leaves the rest (the ring,
// the staged batches) to the next process, which continues the run.
func (c *Collector) Stop() error {
	c.stopOnce.Do(func() { c.stopErr = c.stop() })
	return c.stopErr
}

// keeping reports whether Stop leaves the pinned program attached.
func (c *Collector) keeping() bool { return c.pin != nil && !c.cfg.DetachOnStop }

func (c *Collector) stop() error {
	var errs []error
	keep := c.keeping()
	c.leaving.Store(keep)
	c.stopping.Store(true)
	c.phase.SetStopping()
	defer c.phase.SetStopped()
	if !keep {
		if err := c.detach(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.started.Load() && c.statsDone != nil {
		if c.rd != nil {
			if err := c.rd.Flush(); err != nil {
				errs = append(errs, fmt.Errorf("wake ring reader: %w", err))
			}
		}
		<-c.done
		// One FlushTimeout for the last flow export and the frames' flush together.
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.FlushTimeout)
		if err := c.stopFlows(ctx, !keep); err != nil {
			errs = append(errs, err)
		}
		if err := c.stopDrops(ctx, !keep); err != nil {
			errs = append(errs, err)
		}
		c.statsCancel()
		<-c.statsDone
		// The frames first, then the last stats message, so that it carries their acknowledgements
		// (loss_budget reads records_acked from it).
		err := c.prod.flush(ctx)
		c.publishStats()
		if err == nil {
			err = c.prod.flush(ctx)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("not every message was acknowledged by Kafka within %s: %w", c.cfg.FlushTimeout, err))
		}
		cancel()
	}
	c.prod.close()
	s := c.Stats()
	c.log.Info("collector stopped", "samples_read", s.SamplesRead, "records_acked", s.RecordsAcked,
		"records_shed", s.RecordsShed, "records_failed", s.RecordsFailed, "kernel_ring_full", s.KernelRingFull,
		"pinned_program_kept", keep)
	c.removePin = c.pin != nil && !keep
	if err := c.release(); err != nil {
		errs = append(errs, err)
	}
	c.reg.Unregister(c.metrics)
	return errors.Join(errs...)
}

// detach takes the program off the interface: the link closed, or a pinned one detached and
// unpinned.
func (c *Collector) detach() error {
	if c.pin != nil {
		if err := c.pin.Detach(); err != nil {
			return fmt.Errorf("detach from %s: %w", c.cfg.Iface, err)
		}
	}
	if c.link != nil {
		err := c.link.Close()
		c.link = nil
		if err != nil {
			return fmt.Errorf("detach from %s: %w", c.cfg.Iface, err)
		}
	}
	return nil
}

// release closes what Start opened, in reverse order; safe on a partial Start. A pinned run
// stays pinned unless Stop ends it (removePin).
func (c *Collector) release() error {
	c.releaseDrops()
	if c.flows != nil { // a partial Start, or Stop before the source ran
		c.flowsCancel()
		<-c.flowsDone
		c.flows.cl.Close()
		c.flows = nil
	}
	if c.link != nil {
		c.link.Close()
		c.link = nil
	}
	final := &record.Stats{}
	c.kernelStats(final)
	c.objsMu.Lock()
	defer c.objsMu.Unlock()
	c.finalKernel = final
	if c.rd != nil {
		c.rd.Close()
		c.rd = nil
	}
	var err error
	switch {
	case c.pin != nil && c.removePin:
		if err = c.pin.Remove(); err != nil {
			err = fmt.Errorf("remove the pins in %s: %w", c.cfg.PinDir, err)
		} else {
			c.log.Info("pinned run ended: program detached, pins removed", "pin_dir", c.cfg.PinDir)
		}
		c.pin = nil
	case c.pin != nil: // closes the objects too; what is pinned stays
		c.pin.Close()
		c.pin = nil
	case c.objs != nil:
		c.objs.Close()
	}
	c.objs = nil
	if c.unlockPin != nil {
		c.unlockPin()
		c.unlockPin = nil
	}
	return err
}
