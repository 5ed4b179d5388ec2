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

// Stop detaches the program first (no packet is recorded after it returns, and nothing is left
// attached), drains what the ring still holds into a last frame, publishes final stats, waits
// up to FlushTimeout for Kafka to acknowledge, and releases everything. Idempotent.
func (c *Collector) Stop() error {
	c.stopOnce.Do(func() { c.stopErr = c.stop() })
	return c.stopErr
}

func (c *Collector) stop() error {
	var errs []error
	c.stopping.Store(true)
	c.phase.SetStopping()
	defer c.phase.SetStopped()
	if c.link != nil {
		if err := c.link.Close(); err != nil {
			errs = append(errs, fmt.Errorf("detach from %s: %w", c.cfg.Iface, err))
		}
		c.link = nil
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
		if err := c.stopFlows(ctx); err != nil {
			errs = append(errs, err)
		}
		c.statsCancel()
		<-c.statsDone
		c.publishStats()
		if err := c.prod.flush(ctx); err != nil {
			errs = append(errs, fmt.Errorf("not every message was acknowledged by Kafka within %s: %w", c.cfg.FlushTimeout, err))
		}
		cancel()
	}
	c.prod.close()
	s := c.Stats()
	c.log.Info("collector stopped", "samples_read", s.SamplesRead, "records_acked", s.RecordsAcked,
		"records_shed", s.RecordsShed, "records_failed", s.RecordsFailed, "kernel_ring_full", s.KernelRingFull)
	c.release()
	c.reg.Unregister(c.metrics)
	return errors.Join(errs...)
}

// release closes what Start opened, in reverse order; safe on a partial Start.
func (c *Collector) release() {
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
	if c.objs != nil {
		c.objs.Close()
		c.objs = nil
	}
}
