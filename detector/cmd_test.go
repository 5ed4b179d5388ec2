package detector

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDetectCommand runs `packetlake detect` as an operator would, with a config file whose
// detect: section sets flags by name: it writes the anomaly, logs it as one JSON line, and
// exits 0 on SIGTERM.
func TestDetectCommand(t *testing.T) {
	db := migratedDB(t)
	conf := filepath.Join(t.TempDir(), "packetlake.yaml")
	if err := os.WriteFile(conf, []byte("log-format: json\ndetect:\n  interval: 500ms\n  udp-flood-min-rate: 550\n  detectors: udp_flood,icmp_flood\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	insertCrafted(t, db, time.Now(), crafted("udp_flood 10.0.0.7"))
	cmd := exec.Command(env.Bin, "detect", "--config", conf, "--clickhouse-http", env.ClickHouse.HTTPAddr(),
		"--database", db, "--metrics-addr", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var anomaly map[string]any
	timeout := time.After(20 * time.Second)
	for anomaly == nil {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("detect exited: %v", cmd.Wait())
			}
			t.Log(l)
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "anomaly" {
				anomaly = m
			}
		case <-timeout:
			cmd.Process.Kill()
			t.Fatal("no anomaly logged in 20 s")
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	for l := range lines {
		t.Log(l)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("detect after SIGTERM: %v", err)
	}
	ev, _ := anomaly["evidence"].(map[string]any)
	th, _ := ev["thresholds"].(map[string]any)
	if anomaly["kind"] != UDPFlood || anomaly["subject"] != "10.0.0.7" || th["udp_flood_min_rate"] != 550.0 {
		t.Fatalf("logged %v, want udp_flood 10.0.0.7 with the configured threshold 550 in its evidence", anomaly)
	}
	rows := anomalies(t, db)
	if len(rows) != 1 || rows[0].String() != "udp_flood 10.0.0.7" || !strings.Contains(rows[0].Evidence, `"udp_flood_min_rate":550`) {
		t.Fatalf("anomalies %v", kindsAndSubjects(rows))
	}
}
