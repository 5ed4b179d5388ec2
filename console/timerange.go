package console

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// BadRequest is an error in what the browser asked: the API answers 400 with its message.
type BadRequest struct{ Msg string }

func (e *BadRequest) Error() string { return e.Msg }

func badf(format string, a ...any) error { return &BadRequest{fmt.Sprintf(format, a...)} }

// parseTime reads a time of the URL: "now", "now-6h" (any Go duration, plus d for days),
// RFC 3339, or Unix seconds.
func parseTime(name, s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "now" {
		return now, nil
	}
	if rest, ok := strings.CutPrefix(s, "now-"); ok {
		d, err := parseDuration(rest)
		if err != nil || d <= 0 {
			return time.Time{}, badf("%s=%q: want now-DURATION such as now-6h or now-7d", name, s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Time{}, badf("%s=%q: want now, now-6h, RFC 3339 (2026-12-07T10:00:00Z) or Unix seconds", name, s)
}

func parseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		return time.Duration(n) * 24 * time.Hour, err
	}
	return time.ParseDuration(s)
}

// maxRange bounds what one view may ask for.
const maxRange = 400 * 24 * time.Hour

// timeRange reads from and to (defaults now-1h and now).
func timeRange(v url.Values, now time.Time) (from, to time.Time, err error) {
	fs, ts := v.Get("from"), v.Get("to")
	if fs == "" {
		fs = "now-1h"
	}
	if ts == "" {
		ts = "now"
	}
	if from, err = parseTime("from", fs, now); err != nil {
		return
	}
	if to, err = parseTime("to", ts, now); err != nil {
		return
	}
	if !from.Before(to) {
		return from, to, badf("the range is empty: from (%s) is not before to (%s)", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if to.Sub(from) > maxRange {
		return from, to, badf("the range is longer than %d days", int(maxRange/(24*time.Hour)))
	}
	return from, to, nil
}

// steps the traffic view buckets by: the first that gives at most maxPoints points wins.
var steps = []time.Duration{time.Second, 10 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute,
	10 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, 24 * time.Hour}

const maxPoints = 300

func pickStep(r time.Duration) time.Duration {
	for _, s := range steps {
		if r/s <= maxPoints {
			return s
		}
	}
	return steps[len(steps)-1]
}

// align widens [from, to) to whole steps (from Unix time 0, so hours and days are UTC's).
func align(from, to time.Time, step time.Duration) (time.Time, time.Time) {
	s := int64(step / time.Second)
	f := from.Unix() / s * s
	t := (to.Unix() + s - 1) / s * s
	if to.Nanosecond() > 0 && to.Unix()%s == 0 {
		t += s
	}
	return time.Unix(f, 0).UTC(), time.Unix(t, 0).UTC()
}

const chTime = "2006-01-02 15:04:05.000000000"
