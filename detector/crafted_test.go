package detector

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// craftedCases are rows written straight into packets (no kernel: the attack tests in
// attack_test.go do that) to pin each detector's logic down at its edges: sample_rate scaling,
// traffic just under a threshold, benign traffic that looks a little like an attack. {t} is the
// cycle's time; every packet is captured in the 8 s before it unless said otherwise.
var craftedCases = []struct {
	name string
	want string // "kind subject" the cycle must report, "" for none
	sql  []string
}{
	{"SYN flood from spoofed sources", "syn_flood 10.0.0.1:80", []string{
		`SELECT {t} - toIntervalMillisecond(1000 + number * 5), toIPv6(IPv4NumToString(toUInt32(180879360 + number))), toIPv6('10.0.0.1'), 6, 1024 + number, 80, 0x02, 0, '', 0, 1, 60 FROM numbers(1500)`}},
	{"sampled SYN flood: 100 recorded SYNs at 1 in 20 are 2000", "syn_flood 10.0.0.2:443", []string{
		`SELECT {t} - toIntervalMillisecond(1000 + number * 50), toIPv6('10.9.0.2'), toIPv6('10.0.0.2'), 6, 1024 + number, 443, 0x02, 0, '', 0, 20, 60 FROM numbers(100)`}},
	{"busy server: as many SYNs, every handshake completed", "", []string{
		`SELECT {t} - toIntervalMillisecond(1000 + number * 5), toIPv6('10.9.0.3'), toIPv6('10.0.0.3'), 6, 1024 + number, 80, 0x02, 0, '', 0, 1, 60 FROM numbers(1500)`,
		`SELECT {t} - toIntervalMillisecond(900 + number * 5), toIPv6('10.9.0.3'), toIPv6('10.0.0.3'), 6, 1024 + number, 80, 0x10, 0, '', 0, 1, 60 FROM numbers(1500)`}},
	{"SYNs just under the rate", "", []string{
		`SELECT {t} - toIntervalMillisecond(1000 + number * 5), toIPv6('10.9.0.4'), toIPv6('10.0.0.4'), 6, 1024 + number, 80, 0x02, 0, '', 0, 1, 60 FROM numbers(990)`}},
	{"SYN scan of 150 ports, RSTs after the SYN-ACKs", "port_scan 10.1.0.1", []string{
		`SELECT {t} - toIntervalMillisecond(1000 + number * 10), toIPv6('10.1.0.1'), toIPv6('10.0.0.5'), 6, 40000, 1 + number, 0x02, 0, '', 0, 1, 60 FROM numbers(150)`,
		`SELECT {t} - toIntervalMillisecond(990 + number * 10), toIPv6('10.1.0.1'), toIPv6('10.0.0.5'), 6, 40000, 1 + number, 0x04, 0, '', 0, 1, 60 FROM numbers(150)`}},
	{"sampled scan: 30 ports recorded at 1 in 5 are 150", "port_scan 10.1.0.2", []string{
		`SELECT {t} - toIntervalMillisecond(1000 + number * 10), toIPv6('10.1.0.2'), toIPv6('10.0.0.5'), 6, 40000, 1000 + number * 5, 0x02, 0, '', 0, 5, 60 FROM numbers(30)`}},
	{"client with 99 connections to one server: established traffic is no scan", "", []string{
		`SELECT {t} - toIntervalMillisecond(1000 + number * 10), toIPv6('10.1.0.3'), toIPv6('10.0.0.5'), 6, 30000 + number, 8080, if(number < 99, 0x02, 0x18), 0, '', 0, 1, 60 FROM numbers(500)`}},
	{"ping sweep of 60 hosts", "host_sweep 10.2.0.1", []string{
		`SELECT {t} - toIntervalMillisecond(1000 + number * 10), toIPv6('10.2.0.1'), toIPv6(IPv4NumToString(toUInt32(169082880 + number))), 1, 0, 0, 0, 8, '', 0, 1, 60 FROM numbers(60)`}},
	{"ICMP flood", "icmp_flood 10.0.0.6", []string{
		`SELECT {t} - toIntervalMillisecond(1000 + number * 2), toIPv6('10.9.0.6'), toIPv6('10.0.0.6'), 1, 0, 0, 0, 8, '', 0, 1, 98 FROM numbers(2500)`}},
	{"UDP flood", "udp_flood 10.0.0.7", []string{
		`SELECT {t} - toIntervalMillisecond(1000 + number), toIPv6('10.9.0.7'), toIPv6('10.0.0.7'), 17, 1024 + number % 60000, 9999, 0, 0, '', 0, 1, 60 FROM numbers(6000)`}},
	{"DNS tunnel: 40 long random names under one parent", "dns_tunnel 10.3.0.1 example.com", []string{
		`SELECT {t} - toIntervalMillisecond(1000 + number * 20), toIPv6('10.3.0.1'), toIPv6('10.0.0.53'), 17, 30000 + number, 53, 0, 0, concat(lower(substring(base32Encode(SHA256(toString(number))), 1, 40)), '.exfil.example.com'), 0, 1, 90 FROM numbers(40)`}},
	{"CDN client: 40 short names under one parent", "", []string{
		`SELECT {t} - toIntervalMillisecond(1000 + number * 20), toIPv6('10.3.0.2'), toIPv6('10.0.0.53'), 17, 30000 + number, 53, 0, 0, concat('img', toString(number), '.cdn.example.net'), 0, 1, 70 FROM numbers(40)`}},
	{"hashed names, too few of them", "", []string{
		`SELECT {t} - toIntervalMillisecond(1000 + number * 20), toIPv6('10.3.0.3'), toIPv6('10.0.0.53'), 17, 30000 + number, 53, 0, 0, concat(lower(hex(SHA256(toString(number)))), '.example.org'), 0, 1, 90 FROM numbers(20)`}},
	{"ACK flood on a quiet address: volume spike only", "volume_spike 10.0.0.8", []string{
		`SELECT {t} - toIntervalMillisecond(1000 + intDiv(number, 2)), toIPv6('10.9.0.8'), toIPv6('10.0.0.8'), 6, 4444, 80, 0x10, 0, '', 0, 1, 60 FROM numbers(12000)`}},
	{"ICMP flood big enough for a volume spike: reported as the flood only", "icmp_flood 10.0.0.9", []string{
		`SELECT {t} - toIntervalMillisecond(1000 + intDiv(number, 2)), toIPv6('10.9.0.9'), toIPv6('10.0.0.9'), 1, 0, 0, 0, 8, '', 0, 1, 98 FROM numbers(12000)`}},
	{"1500 packets/s, as for the last 10 minutes", "", []string{
		`SELECT {t} - toIntervalMillisecond(10000 + number * 100), toIPv6('10.9.0.10'), toIPv6('10.0.0.10'), 6, 4444, 80, 0x10, 0, '', 0, 150, 60 FROM numbers(6000)`,
		`SELECT {t} - toIntervalMillisecond(1 + number * 100), toIPv6('10.9.0.10'), toIPv6('10.0.0.10'), 6, 4444, 80, 0x10, 0, '', 0, 150, 60 FROM numbers(100)`}},
	{"1500 packets/s after 10 minutes of 100", "volume_spike 10.0.0.11", []string{
		`SELECT {t} - toIntervalMillisecond(10000 + number * 100), toIPv6('10.9.0.11'), toIPv6('10.0.0.11'), 6, 4444, 80, 0x10, 0, '', 0, 10, 60 FROM numbers(6000)`,
		`SELECT {t} - toIntervalMillisecond(1 + number * 100), toIPv6('10.9.0.11'), toIPv6('10.0.0.11'), 6, 4444, 80, 0x10, 0, '', 0, 150, 60 FROM numbers(100)`}},
	{"old flood, outside the window", "", []string{
		`SELECT {t} - toIntervalMillisecond(11000 + number), toIPv6('10.9.0.12'), toIPv6('10.0.0.12'), 1, 0, 0, 0, 8, '', 0, 1, 98 FROM numbers(5000)`}},
}

// crafted returns the rows of the case that must report want.
func crafted(want string) []string {
	for _, c := range craftedCases {
		if c.want == want {
			return c.sql
		}
	}
	panic("no crafted case reports " + want)
}

const craftedColumns = "ts, src_addr, dst_addr, ip_proto, src_port, dst_port, tcp_flags, icmp_type, dns_qname, dns_is_response, sample_rate, pkt_len"

func insertCrafted(t *testing.T, db string, at time.Time, selects []string) {
	t.Helper()
	tsql := "toDateTime64('" + at.UTC().Format("2006-01-02 15:04:05.000") + "', 9, 'UTC')"
	for _, s := range selects {
		execSQL(t, db, "INSERT INTO {db}.packets ("+craftedColumns+") "+strings.ReplaceAll(s, "{t}", tsql))
	}
}

// TestCraftedPackets: one cycle over all the cases at once reports exactly the attacks; the
// next cycles, while they go on, report nothing new; once they are over for RearmAfter, a new
// flood is reported again; a restarted detector remembers what was reported.
func TestCraftedPackets(t *testing.T) {
	db := migratedDB(t)
	now := time.Now().UTC().Truncate(time.Second)
	var want []string
	for _, c := range craftedCases {
		insertCrafted(t, db, now, c.sql)
		if c.want != "" {
			want = append(want, c.want)
		}
	}
	slices.Sort(want)
	cfg := testConfig(db)
	cfg.RearmAfter = 5 * time.Second
	reg := prometheus.NewRegistry()
	d := newDetector(t, cfg, reg)
	ctx := t.Context()

	// The first cycle reports every kind but volume_spike, which it holds; the second, one
	// second later with the same packets in the window, confirms and reports the spikes.
	first, err := d.cycle(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if n := counterValue(d.m.held); n != 2 {
		t.Errorf("volume spikes held after the first cycle: %v, want 2", n)
	}
	second, err := d.cycle(ctx, now.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for i, cycle := range [][]Anomaly{first, second} {
		gotKS, wantKS := reported(cycle), []string(nil)
		for _, w := range want {
			if strings.HasPrefix(w, VolumeSpike+" ") == (i == 1) {
				wantKS = append(wantKS, w)
			}
		}
		slices.Sort(gotKS)
		if !slices.Equal(gotKS, wantKS) {
			t.Errorf("cycle %d reported\n  %s\nwant\n  %s", i+1, strings.Join(gotKS, "\n  "), strings.Join(wantKS, "\n  "))
		}
	}
	got := append(first, second...)
	for _, a := range got {
		t.Logf("%s %s score %.2f evidence %s", a.Kind, a.Subject, a.Score, a.Evidence)
	}
	rows := anomalies(t, db)
	if ks := kindsAndSubjects(rows); len(ks) != len(want) {
		t.Fatalf("anomalies table has %d rows, want %d: %v", len(ks), len(want), ks)
	}
	checkEvidence(t, rows)
	if n := counterValue(d.m.suppressed); n < 1 {
		t.Errorf("suppressed volume spikes: %v, want the ICMP flood's", n)
	}

	// While the same packets are in the window: detected, not reported.
	for i := 2; i <= 3; i++ {
		if fresh, err := d.cycle(ctx, now.Add(time.Duration(i)*time.Second)); err != nil || len(fresh) != 0 {
			t.Fatalf("cycle %d: %d new anomalies (%v), want none: the incidents continue", i, len(fresh), err)
		}
	}
	if n := len(anomalies(t, db)); n != len(want) {
		t.Fatalf("anomalies after 4 cycles: %d rows, want still %d", n, len(want))
	}

	// A detector started now (as after a crash) restores the incidents and reports nothing new.
	d2 := newDetector(t, cfg, nil)
	if err := d2.restore(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if keys := d2.incidentKeys(); len(keys) != len(want) {
		t.Fatalf("restored incidents %v, want %d", keys, len(want))
	}
	if fresh, err := d2.cycle(ctx, now.Add(4*time.Second)); err != nil || len(fresh) != 0 {
		t.Fatalf("restarted detector: %d new anomalies (%v), want none", len(fresh), err)
	}

	// The packets age out of the window; RearmAfter later the incidents are over...
	later := now.Add(cfg.Window + cfg.RearmAfter + 2*time.Second)
	if fresh, err := d.cycle(ctx, later); err != nil || len(fresh) != 0 {
		t.Fatalf("quiet cycle: %v %v", fresh, err)
	}
	if keys := d.incidentKeys(); len(keys) != 0 {
		t.Fatalf("incidents still held after a quiet rearm period: %v", keys)
	}
	// ...and the same flood again is a new anomaly.
	insertCrafted(t, db, later.Add(5*time.Second), crafted("syn_flood 10.0.0.1:80"))
	fresh, err := d.cycle(ctx, later.Add(5*time.Second))
	if err != nil || len(fresh) != 1 || fresh[0].Kind+" "+fresh[0].Subject != "syn_flood 10.0.0.1:80" {
		t.Fatalf("flood after the rearm period: %v (%v), want one syn_flood 10.0.0.1:80", fresh, err)
	}
	if n := len(anomalies(t, db)); n != len(want)+1 {
		t.Fatalf("anomalies: %d rows, want %d", n, len(want)+1)
	}
	if n := counterValue(d.m.anomalies); n != float64(len(want)+1) {
		t.Errorf("anomalies_total %v, want %d", n, len(want)+1)
	}
	if n := counterValue(d.m.errors); n != 0 {
		t.Errorf("errors_total %v", n)
	}
}

// checkEvidence: every row names its detector and version, has a score of at least 1, a
// window inside the data's, and evidence that is a JSON object with the thresholds used.
func checkEvidence(t *testing.T, rows []row) {
	t.Helper()
	for _, r := range rows {
		var ev map[string]any
		if err := json.Unmarshal([]byte(r.Evidence), &ev); err != nil {
			t.Errorf("%s: evidence is not a JSON object: %v", r, err)
			continue
		}
		if _, ok := ev["thresholds"].(map[string]any); !ok {
			t.Errorf("%s: evidence without thresholds: %s", r, r.Evidence)
		}
		if r.Score < 1 || !strings.HasPrefix(r.Version, r.Kind+"@") || r.ID == "" {
			t.Errorf("%s: score %v version %q id %q", r, r.Score, r.Version, r.ID)
		}
		if r.WindowStart.IsZero() || r.WindowEnd.Before(r.WindowStart) || r.TS.Before(r.WindowEnd) {
			t.Errorf("%s: window %v..%v reported %v", r, r.WindowStart, r.WindowEnd, r.TS)
		}
		if len(r.addresses()) == 0 {
			t.Errorf("%s: evidence names no address", r)
		}
	}
	// The sampled cases are scaled.
	for _, r := range rows {
		var ev map[string]any
		json.Unmarshal([]byte(r.Evidence), &ev)
		switch r.String() {
		case "syn_flood 10.0.0.2:443":
			if ev["syns"] != 2000.0 {
				t.Errorf("%s: syns %v, want 2000 (100 recorded at 1 in 20)", r, ev["syns"])
			}
		case "port_scan 10.1.0.2":
			if ev["ports"] != 150.0 || ev["ports_recorded"] != 30.0 {
				t.Errorf("%s: ports %v recorded %v, want 150 and 30", r, ev["ports"], ev["ports_recorded"])
			}
		}
	}
}

// TestVolumeSeenBeforeItsFlood replays the race of one insert filling detect_dst_1s (which
// volume_spike reads) before detect_recent (which every other detector reads): a cycle between
// the two sees a SYN flood's volume but not its SYNs. The spike is held, and the next cycle,
// which sees the SYNs, reports the flood alone and suppresses the spike.
func TestVolumeSeenBeforeItsFlood(t *testing.T) {
	db := migratedDB(t)
	now := time.Now().UTC().Truncate(time.Second)
	tsql := "toDateTime64('" + now.Format("2006-01-02 15:04:05.000") + "', 9, 'UTC')"
	flood := strings.ReplaceAll(`SELECT {t} - toIntervalMillisecond(1000 + intDiv(number, 2)) AS ts, toIPv6('10.9.0.20') AS src_addr,
		toIPv6('10.0.0.20') AS dst_addr, toUInt8(6) AS ip_proto, toUInt16(1024 + number % 60000) AS src_port, toUInt16(80) AS dst_port,
		toUInt16(0x02) AS tcp_flags, toUInt8(0) AS icmp_type, toUInt8(0) AS dns_is_response, '' AS dns_qname,
		toUInt32(1) AS sample_rate, toUInt32(60) AS pkt_len FROM numbers(12000)`, "{t}", tsql)
	// As detect_dst_1s_mv would write it.
	execSQL(t, db, `INSERT INTO {db}.detect_dst_1s (ts, dst_addr, ip_proto, packets, bytes)
		SELECT toDateTime(ts), dst_addr, ip_proto, count(), sum(pkt_len) FROM (`+flood+`) GROUP BY 1, 2, 3`)
	d := newDetector(t, testConfig(db), prometheus.NewRegistry())
	if fresh, err := d.cycle(t.Context(), now); err != nil || len(fresh) != 0 {
		t.Fatalf("cycle that sees the volume only: %v (%v), want nothing reported yet", reported(fresh), err)
	}
	if n := counterValue(d.m.held); n != 1 {
		t.Fatalf("held volume spikes: %v, want 1", n)
	}
	// As detect_recent_mv writes it, a moment later.
	execSQL(t, db, `INSERT INTO {db}.detect_recent (ts, src_addr, dst_addr, ip_proto, src_port, dst_port, tcp_flags,
		icmp_type, dns_is_response, dns_qname, sample_rate, pkt_len) `+flood)
	fresh, err := d.cycle(t.Context(), now.Add(time.Second))
	if err != nil || len(fresh) != 1 || fresh[0].Kind+" "+fresh[0].Subject != "syn_flood 10.0.0.20:80" {
		t.Fatalf("next cycle: %v (%v), want exactly syn_flood 10.0.0.20:80", reported(fresh), err)
	}
	if n := counterValue(d.m.suppressed); n != 1 {
		t.Errorf("suppressed volume spikes: %v, want 1", n)
	}
	if n := counterValue(d.m.held); n != 0 {
		t.Errorf("held volume spikes: %v, want 0", n)
	}
}

// reported lists anomalies as "kind subject".
func reported(as []Anomaly) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Kind+" "+a.Subject)
	}
	return out
}
