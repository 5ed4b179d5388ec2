package detector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// incident is a (kind, subject) reported and still being detected.
type incident struct {
	a        Anomaly
	lastSeen time.Time // cycle time it was last detected
	peak     float64   // highest score while detected
	cycles   int       // cycles that detected it
}

func incidentKey(kind, subject string) string { return kind + "\x00" + subject }

// cycle runs every detector over [now-Window, now), writes the new anomalies and ends the
// incidents not detected for RearmAfter. It returns the anomalies written.
func (d *Detector) cycle(ctx context.Context, now time.Time) ([]Anomaly, error) {
	start := time.Now()
	defer func() {
		d.m.cycles.Inc()
		d.m.cycleDuration.Observe(time.Since(start).Seconds())
	}()
	found, failed, cycleErr := d.runDetectors(ctx, d.params(now))
	fresh := d.sift(found, failed, now)
	if len(fresh) > 0 {
		if err := d.writeFresh(ctx, fresh); err != nil {
			fresh = nil
			cycleErr = append(cycleErr, fmt.Errorf("insert: %w", err))
		}
	}
	d.open(fresh, now)
	d.expire(now, failed)
	return fresh, errors.Join(cycleErr...)
}

// runDetectors runs every detector at once. It returns what each found, the kinds that failed
// and their errors.
func (d *Detector) runDetectors(ctx context.Context, params map[string]string) ([][]Anomaly, map[string]bool, []error) {
	found := make([][]Anomaly, len(d.detectors))
	errs := make([]error, len(d.detectors))
	var wg sync.WaitGroup
	for i, det := range d.detectors {
		wg.Go(func() {
			t := time.Now()
			found[i], errs[i] = d.run(ctx, det, params)
			d.m.queryDuration.WithLabelValues(det.kind).Observe(time.Since(t).Seconds())
		})
	}
	wg.Wait()
	failed := map[string]bool{}
	var cycleErr []error
	for i, err := range errs {
		if err != nil {
			kind := d.detectors[i].kind
			failed[kind] = true
			if ctx.Err() == nil {
				d.m.errors.WithLabelValues(kind).Inc()
				d.log.Warn("detector failed", "detector", kind, "err", err)
			}
			cycleErr = append(cycleErr, fmt.Errorf("%s: %w", kind, err))
		}
	}
	return found, failed, cycleErr
}

// explained lists the addresses that a finding or an incident other than a volume spike
// involves: a volume spike on one of them (the target of a flood, a scanned host) is that
// incident's volume, not news.
func (d *Detector) explained(found [][]Anomaly) map[string]bool {
	explained := map[string]bool{}
	for _, as := range found {
		for _, a := range as {
			if a.Kind != VolumeSpike {
				for _, addr := range a.addresses {
					explained[addr] = true
				}
			}
		}
	}
	for _, inc := range d.incidents {
		if inc.a.Kind != VolumeSpike {
			for _, addr := range inc.a.addresses {
				explained[addr] = true
			}
		}
	}
	return explained
}

// sift sorts the cycle's findings: an ongoing incident is seen again, an explained volume spike
// is suppressed, a volume spike found for the first time is held; the rest is returned, fresh.
//
// A volume spike is reported only when the cycle before found it too (the loop runs that
// confirming cycle confirmAfter later). The detectors read different tables (detect_dst_1s,
// detect_recent) that one insert fills one after the other, so a cycle can see a flood's
// volume before the flood itself; the next one sees the flood's incident explain it.
func (d *Detector) sift(found [][]Anomaly, failed map[string]bool, now time.Time) []Anomaly {
	explained := d.explained(found)
	held := map[string]bool{}
	var fresh []Anomaly
	for _, as := range found {
		for _, a := range as {
			key := incidentKey(a.Kind, a.Subject)
			if inc := d.incidents[key]; inc != nil {
				inc.lastSeen, inc.peak, inc.cycles = now, max(inc.peak, a.Score), inc.cycles+1
				continue
			}
			if a.Kind == VolumeSpike && explained[a.Subject] {
				d.m.suppressed.WithLabelValues(a.Kind).Inc()
				continue
			}
			if a.Kind == VolumeSpike && !d.held[key] {
				held[key] = true
				continue
			}
			fresh = append(fresh, a)
		}
	}
	if failed[VolumeSpike] { // not detected this cycle is not "gone": keep what was held
		for key := range d.held {
			held[key] = true
		}
	}
	d.held = held
	d.m.held.Set(float64(len(held)))
	return fresh
}

// writeFresh writes the fresh anomalies. On failure they are not remembered: the next cycle
// detects them again and retries (volume spikes without a second wait: they were confirmed
// already).
func (d *Detector) writeFresh(ctx context.Context, fresh []Anomaly) error {
	err := d.write(ctx, fresh)
	if err == nil {
		return nil
	}
	if ctx.Err() == nil {
		d.m.errors.WithLabelValues("insert").Inc()
		d.log.Error("cannot write anomalies; retrying next cycle", "anomalies", len(fresh), "err", err)
	}
	for _, a := range fresh {
		if a.Kind == VolumeSpike {
			d.held[incidentKey(a.Kind, a.Subject)] = true
		}
	}
	return err
}

// open makes each written anomaly an incident, and logs it and hands it to the webhook.
func (d *Detector) open(fresh []Anomaly, now time.Time) {
	for _, a := range fresh {
		d.incidents[incidentKey(a.Kind, a.Subject)] = &incident{a: a, lastSeen: now, peak: a.Score, cycles: 1}
		d.m.anomalies.WithLabelValues(a.Kind).Inc()
		d.log.Warn("anomaly", "kind", a.Kind, "subject", a.Subject, "score", round(a.Score, 3),
			"window_start", a.WindowStart, "window_end", a.WindowEnd, "id", a.ID,
			"detector_version", a.DetectorVersion, "evidence", a.Evidence)
		if d.hook != nil {
			if b, err := json.Marshal(a); err == nil {
				d.hook.enqueue(b)
			}
		}
	}
}

// expire ends the incidents not detected for RearmAfter, except those of detectors that failed
// this cycle (absence of evidence is not evidence then).
func (d *Detector) expire(now time.Time, failed map[string]bool) {
	active := map[string]int{}
	for key, inc := range d.incidents {
		if !failed[inc.a.Kind] && now.Sub(inc.lastSeen) > d.cfg.RearmAfter {
			delete(d.incidents, key)
			d.log.Info("anomaly over", "kind", inc.a.Kind, "subject", inc.a.Subject, "id", inc.a.ID,
				"reported", inc.a.TS, "last_detected", inc.lastSeen, "cycles", inc.cycles, "peak_score", round(inc.peak, 3))
			continue
		}
		active[inc.a.Kind]++
	}
	for _, k := range Kinds {
		d.m.active.WithLabelValues(k).Set(float64(active[k]))
	}
}
