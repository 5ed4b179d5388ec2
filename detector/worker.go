package detector

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
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

// chTime is the text ClickHouse reads into a DateTime64 column (the session time zone is UTC).
const chTime = "2006-01-02 15:04:05.000"

// cycle runs every detector over [now-Window, now), writes the new anomalies and ends the
// incidents not detected for RearmAfter. It returns the anomalies written.
func (d *Detector) cycle(ctx context.Context, now time.Time) ([]Anomaly, error) {
	start := time.Now()
	defer func() {
		d.m.cycles.Inc()
		d.m.cycleDuration.Observe(time.Since(start).Seconds())
	}()
	params := d.params(now)
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

	// A volume spike on an address that a more specific incident involves (the target of a
	// flood, a scanned host) is that incident's volume, not news.
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

	// A volume spike is reported only when the cycle before found it too (the loop runs that
	// confirming cycle confirmAfter later). The detectors read different tables (detect_dst_1s,
	// detect_recent) that one insert fills one after the other, so a cycle can see a flood's
	// volume before the flood itself; the next one sees the flood's incident explain it.
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
	if len(fresh) > 0 {
		if err := d.write(ctx, fresh); err != nil {
			// Not remembered: the next cycle detects them again and retries (volume spikes
			// without a second wait: they were confirmed already).
			if ctx.Err() == nil {
				d.m.errors.WithLabelValues("insert").Inc()
				d.log.Error("cannot write anomalies; retrying next cycle", "anomalies", len(fresh), "err", err)
			}
			for _, a := range fresh {
				if a.Kind == VolumeSpike {
					d.held[incidentKey(a.Kind, a.Subject)] = true
				}
			}
			fresh = nil
			cycleErr = append(cycleErr, fmt.Errorf("insert: %w", err))
		}
	}
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
	d.expire(now, failed)
	return fresh, errors.Join(cycleErr...)
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

// params binds the window and the thresholds.
func (d *Detector) params(now time.Time) map[string]string {
	p := d.cfg.Thresholds.params()
	const f = "2006-01-02 15:04:05.000000000"
	p["since"] = now.Add(-d.cfg.Window).UTC().Format(f)
	p["until"] = now.UTC().Format(f)
	p["window_seconds"] = fmt.Sprint(d.cfg.Window.Seconds())
	return p
}

// thresholdPrefix selects the parameters a detector's evidence repeats.
func thresholdPrefix(kind string) string {
	if kind == VolumeSpike {
		return "volume_"
	}
	return kind + "_"
}

// run runs one detector and turns its rows into anomalies (not yet written).
func (d *Detector) run(ctx context.Context, det detector, params map[string]string) ([]Anomaly, error) {
	var out []Anomaly
	err := d.ch.selectRows(ctx, det.sql, params, func(row map[string]json.RawMessage) error {
		a := Anomaly{Kind: det.kind, DetectorVersion: det.version, DetectorHost: d.cfg.Host, Database: d.cfg.ClickHouse.Database}
		var startMS, endMS int64
		for _, c := range []struct {
			name string
			dst  any
		}{{"subject", &a.Subject}, {"score", &a.Score}, {"window_start_ms", &startMS}, {"window_end_ms", &endMS}, {"addresses", &a.addresses}} {
			raw, ok := row[c.name]
			if !ok {
				return fmt.Errorf("result has no column %s", c.name)
			}
			if err := json.Unmarshal(raw, c.dst); err != nil {
				return fmt.Errorf("column %s: %w", c.name, err)
			}
			if c.name != "addresses" { // kept in the evidence too: restore reads it back
				delete(row, c.name)
			}
		}
		if a.Subject == "" || math.IsNaN(a.Score) {
			return fmt.Errorf("row without subject or score: %v", row)
		}
		a.WindowStart, a.WindowEnd = time.UnixMilli(startMS).UTC(), time.UnixMilli(endMS).UTC()
		th := map[string]any{"window_seconds": d.cfg.Window.Seconds()}
		for k, v := range params {
			if strings.HasPrefix(k, thresholdPrefix(det.kind)) {
				th[k] = json.Number(v)
			}
		}
		if raw, err := json.Marshal(th); err == nil {
			row["thresholds"] = raw
		}
		ev, err := json.Marshal(row)
		if err != nil {
			return err
		}
		a.Evidence = ev
		out = append(out, a)
		return nil
	})
	return out, err
}

// write gives each anomaly its id and report time and inserts them in one INSERT, deduplicated
// by a token made of their ids (a retry of the same INSERT is dropped by ClickHouse).
func (d *Detector) write(ctx context.Context, as []Anomaly) error {
	now := time.Now().UTC().Truncate(time.Millisecond)
	var buf bytes.Buffer
	h := sha256.New()
	enc := json.NewEncoder(&buf)
	for i := range as {
		a := &as[i]
		a.ID, a.TS = newUUID(), now
		h.Write([]byte(a.ID))
		if err := enc.Encode(map[string]any{
			"ts": a.TS.Format(chTime), "kind": a.Kind, "subject": a.Subject,
			"window_start": a.WindowStart.Format(chTime), "window_end": a.WindowEnd.Format(chTime),
			"score": a.Score, "evidence": string(a.Evidence), "detector_version": a.DetectorVersion,
			"detector_host": a.DetectorHost, "id": a.ID,
		}); err != nil {
			return err
		}
	}
	return d.ch.insertJSON(ctx, "anomalies", buf.Bytes(), "detector-"+hex.EncodeToString(h.Sum(nil)[:16]))
}

// restore re-creates the incidents reported within RearmAfter before now, by the anomalies
// table, so that a restarted detector does not report an ongoing attack a second time. An
// incident older than that which is still going on is reported once more: the table holds when
// an incident was reported, not until when it was detected.
func (d *Detector) restore(ctx context.Context, now time.Time) error {
	const q = `SELECT kind, subject, toString(argMax(id, ts)) AS id, toUnixTimestamp64Milli(max(ts)) AS ts_ms,
	    argMax(evidence, ts) AS evidence, argMax(score, ts) AS score
	FROM anomalies WHERE ts >= {since:DateTime64(3)} GROUP BY kind, subject`
	return d.ch.selectRows(ctx, q, map[string]string{"since": now.Add(-d.cfg.RearmAfter).UTC().Format(chTime)},
		func(row map[string]json.RawMessage) error {
			var r struct {
				Kind, Subject, ID, Evidence string
				TSMS                        int64 `json:"ts_ms"`
				Score                       float64
			}
			b, _ := json.Marshal(row)
			if err := json.Unmarshal(b, &r); err != nil {
				return err
			}
			var ev struct {
				Addresses []string `json:"addresses"`
			}
			json.Unmarshal([]byte(r.Evidence), &ev)
			ts := time.UnixMilli(r.TSMS).UTC()
			a := Anomaly{ID: r.ID, TS: ts, Kind: r.Kind, Subject: r.Subject, Score: r.Score, Evidence: json.RawMessage(r.Evidence), addresses: ev.Addresses}
			d.incidents[incidentKey(r.Kind, r.Subject)] = &incident{a: a, lastSeen: ts, peak: r.Score}
			return nil
		})
}

// incidentKeys lists the (kind, subject) pairs held as ongoing, sorted, for tests. Only safe
// while the cycle goroutine is not running.
func (d *Detector) incidentKeys() []string {
	keys := make([]string, 0, len(d.incidents))
	for k := range d.incidents {
		keys = append(keys, strings.ReplaceAll(k, "\x00", " "))
	}
	sort.Strings(keys)
	return keys
}

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}
