package detector

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/packetlake/packetlake/internal/chconn"
)

// Config configures a Detector. Start from DefaultConfig.
type Config struct {
	// ClickHouse is where packets are: detectors query its HTTP interface (HTTPAddr) and
	// anomalies are inserted through it. Its Database holds packets and the detector's tables
	// (migrations 0200 and 0201); the native address is not used.
	ClickHouse chconn.Config

	// Interval is the period of detection cycles: every detector runs once per cycle.
	Interval time.Duration
	// Window is how much recent data a cycle looks at, by capture time: [now-Window, now).
	// Rates are averaged over it, so a burst of N packets reaches a rate threshold R as soon
	// as N >= R × Window.
	Window time.Duration
	// RearmAfter is how long a (kind, subject) must go undetected before the incident is over
	// and a new detection makes a new anomaly. While detected it is not reported again.
	RearmAfter time.Duration
	// QueryTimeout bounds one detector's query (and the insert of a cycle's anomalies).
	QueryTimeout time.Duration
	// Detectors lists the detectors to run (nil: all of Kinds).
	Detectors []string
	// Host names this detector in the anomalies' detector_host (default: os.Hostname()).
	Host string

	// Webhook, when set, receives a POST with each new anomaly as JSON. Deliveries run in the
	// background from a bounded queue: a slow or failing webhook never delays detection.
	Webhook string
	// WebhookTimeout bounds one POST.
	WebhookTimeout time.Duration
	// WebhookRetries is how many times a failed POST is retried (with backoff) before the
	// anomaly's delivery is given up and counted as failed.
	WebhookRetries int
	// WebhookQueue bounds the anomalies waiting for delivery; beyond it new ones are dropped
	// (and counted) rather than held.
	WebhookQueue int
	// WebhookSecret, when set, signs every POST: header X-Packetlake-Signature-256 is
	// "sha256=" and the hex HMAC-SHA256 of the exact body under this key, so the receiver can
	// reject forged or altered anomalies. Pass it as $PACKETLAKE_WEBHOOK_SECRET.
	WebhookSecret string
	// WebhookAllowHTTP permits an http:// webhook URL; by default only https is accepted (the
	// payload names attacked addresses, and the URL itself often carries a token).
	WebhookAllowHTTP bool
	// WebhookCAFile is a PEM file of CAs the webhook's certificate is checked against instead of
	// the system roots (an internal CA).
	WebhookCAFile string

	Thresholds Thresholds
}

// Thresholds are the detectors' parameters. Each is bound into the detector's SQL as the query
// parameter named like its flag (syn_flood_min_rate for --syn-flood-min-rate); rates are packets
// per second over the window, scaled by sample_rate.
type Thresholds struct {
	SYNFloodMinRate      float64 // SYNs/s to one address:port (default 100)
	SYNFloodMaxCompleted float64 // at most this share of those SYNs answered by ACKs (0.2)
	PortScanMinPorts     float64 // distinct destination ports probed by one source (100)
	HostSweepMinHosts    float64 // distinct destination addresses probed by one source (50)
	ICMPFloodMinRate     float64 // ICMP packets/s to one address (200)
	UDPFloodMinRate      float64 // UDP packets/s to one address (500)
	DNSTunnelMinNames    float64 // distinct subdomains of one parent asked by one client (30)
	DNSTunnelMinLength   float64 // their average length in characters (20)
	DNSTunnelMinEntropy  float64 // their average entropy, bits per character (3.5)
	VolumeMinRate        float64 // packets/s to one address, whatever its baseline (1000)
	TCPLateMinRate       float64 // late (retransmitted or out-of-order) data segments/s of one service (10)
	TCPLateMinRatio      float64 // and at least this share of its data segments (0.05)
	TCPZeroWindowMinRate float64 // or zero-window segments/s of one service (1)
	VolumeFactor         float64 // times the baseline mean (10)
	VolumeSigmas         float64 // baseline standard deviations above its mean (6)
	VolumeBaseline       time.Duration
}

// DefaultConfig returns the defaults; ClickHouse.HTTPAddr is left to set.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		ClickHouse:     chconn.Config{Database: "packetlake"},
		Interval:       2 * time.Second,
		Window:         10 * time.Second,
		RearmAfter:     30 * time.Second,
		QueryTimeout:   10 * time.Second,
		Host:           host,
		WebhookTimeout: 5 * time.Second,
		WebhookRetries: 3,
		WebhookQueue:   1000,
		Thresholds:     DefaultThresholds(),
	}
}

// DefaultThresholds are the documented defaults (detector/README.md says why each).
func DefaultThresholds() Thresholds {
	return Thresholds{
		SYNFloodMinRate:      100,
		SYNFloodMaxCompleted: 0.2,
		PortScanMinPorts:     100,
		HostSweepMinHosts:    50,
		ICMPFloodMinRate:     200,
		UDPFloodMinRate:      500,
		DNSTunnelMinNames:    30,
		DNSTunnelMinLength:   20,
		DNSTunnelMinEntropy:  3.5,
		VolumeMinRate:        1000,
		TCPLateMinRate:       10,
		TCPLateMinRatio:      0.05,
		TCPZeroWindowMinRate: 1,
		VolumeFactor:         10,
		VolumeSigmas:         6,
		VolumeBaseline:       10 * time.Minute,
	}
}

// params are the thresholds as ClickHouse query parameters, named like the flags.
// Params are the thresholds as the query parameters the detectors' SQL binds (without the
// window's since, until and window_seconds), for running detector.SQL by hand or in a test.
func (t Thresholds) Params() map[string]string { return t.params() }

func (t Thresholds) params() map[string]string {
	f := func(v float64) string { return fmt.Sprint(v) }
	return map[string]string{
		"syn_flood_min_rate":       f(t.SYNFloodMinRate),
		"syn_flood_max_completed":  f(t.SYNFloodMaxCompleted),
		"port_scan_min_ports":      f(t.PortScanMinPorts),
		"host_sweep_min_hosts":     f(t.HostSweepMinHosts),
		"icmp_flood_min_rate":      f(t.ICMPFloodMinRate),
		"udp_flood_min_rate":       f(t.UDPFloodMinRate),
		"dns_tunnel_min_names":     f(t.DNSTunnelMinNames),
		"dns_tunnel_min_length":    f(t.DNSTunnelMinLength),
		"dns_tunnel_min_entropy":   f(t.DNSTunnelMinEntropy),
		"volume_min_rate":          f(t.VolumeMinRate),
		"tcp_late_min_rate":        f(t.TCPLateMinRate),
		"tcp_late_min_ratio":       f(t.TCPLateMinRatio),
		"tcp_zero_window_min_rate": f(t.TCPZeroWindowMinRate),
		"volume_factor":            f(t.VolumeFactor),
		"volume_sigmas":            f(t.VolumeSigmas),
		"volume_baseline_seconds":  fmt.Sprint(int(t.VolumeBaseline.Seconds())),
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.ClickHouse.HTTPAddr == "":
		return errors.New("detector: no ClickHouse HTTP address")
	case !identifier(c.ClickHouse.Database):
		return fmt.Errorf("detector: database %q is not a plain identifier", c.ClickHouse.Database)
	case c.Interval <= 0 || c.Window <= 0 || c.QueryTimeout <= 0:
		return errors.New("detector: interval, window and query timeout must be positive")
	case c.Window < time.Second:
		return fmt.Errorf("detector: window %v: at least 1s (rates are per second)", c.Window)
	case c.Interval > c.Window:
		return fmt.Errorf("detector: interval %v is longer than the window %v: packets between two windows would never be looked at", c.Interval, c.Window)
	case c.RearmAfter < 0:
		return errors.New("detector: rearm-after must not be negative")
	case len(c.Host) > 255:
		return errors.New("detector: host name longer than 255 bytes")
	}
	if err := c.ClickHouse.Validate(); err != nil {
		return err
	}
	for _, d := range c.Detectors {
		if !slices.Contains(Kinds, d) {
			return fmt.Errorf("detector: unknown detector %q (have %s)", d, strings.Join(Kinds, ", "))
		}
	}
	if c.Webhook != "" {
		u, err := url.Parse(c.Webhook)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("detector: webhook %s is not an http(s) URL", RedactURL(c.Webhook))
		}
		if u.Scheme == "http" && !c.WebhookAllowHTTP {
			return fmt.Errorf("detector: webhook %s is plain http: anomalies and the URL's token would travel in clear; use https (or --webhook-allow-http for a trusted network)", RedactURL(c.Webhook))
		}
		if c.WebhookTimeout <= 0 || c.WebhookRetries < 0 || c.WebhookQueue <= 0 {
			return errors.New("detector: webhook timeout and queue must be positive, retries not negative")
		}
	}
	t := c.Thresholds
	for name, v := range map[string]float64{
		"syn-flood-min-rate": t.SYNFloodMinRate, "port-scan-min-ports": t.PortScanMinPorts,
		"host-sweep-min-hosts": t.HostSweepMinHosts, "icmp-flood-min-rate": t.ICMPFloodMinRate,
		"udp-flood-min-rate": t.UDPFloodMinRate, "dns-tunnel-min-names": t.DNSTunnelMinNames,
		"volume-min-rate": t.VolumeMinRate, "tcp-late-min-rate": t.TCPLateMinRate,
		"tcp-zero-window-min-rate": t.TCPZeroWindowMinRate,
	} {
		if v <= 0 {
			return fmt.Errorf("detector: %s must be positive (%v)", name, v)
		}
	}
	if t.TCPLateMinRatio < 0 || t.TCPLateMinRatio > 1 {
		return fmt.Errorf("detector: tcp-late-min-ratio %v: a ratio between 0 and 1", t.TCPLateMinRatio)
	}
	if t.SYNFloodMaxCompleted < 0 || t.SYNFloodMaxCompleted > 1 {
		return fmt.Errorf("detector: syn-flood-max-completed %v: a ratio between 0 and 1", t.SYNFloodMaxCompleted)
	}
	if t.DNSTunnelMinLength < 0 || t.DNSTunnelMinEntropy < 0 || t.VolumeFactor < 0 || t.VolumeSigmas < 0 {
		return errors.New("detector: dns-tunnel-min-length, dns-tunnel-min-entropy, volume-factor and volume-sigmas must not be negative")
	}
	if t.VolumeBaseline < c.Window {
		return fmt.Errorf("detector: volume-baseline %v: at least one window (%v)", t.VolumeBaseline, c.Window)
	}
	if t.VolumeBaseline > 50*time.Minute {
		return fmt.Errorf("detector: volume-baseline %v: at most 50m (detect_dst_1s keeps one to two hours)", t.VolumeBaseline)
	}
	return nil
}

func identifier(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// RedactURL shows where a URL points without what makes it a secret: scheme and host only
// (webhook URLs often carry a token in the path, query or user info).
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparsable URL, redacted)"
	}
	out := u.Scheme + "://" + u.Host
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		out += "/(redacted)"
	}
	return out
}
