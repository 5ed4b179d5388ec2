package detector

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// chTime is the text ClickHouse reads into a DateTime64 column (the session time zone is UTC).
const chTime = "2006-01-02 15:04:05.000"

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
	now := d.now().UTC().Truncate(time.Millisecond)
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
