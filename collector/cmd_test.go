package collector

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/packetlake/packetlake/internal/testkit/nettest"
	"github.com/packetlake/packetlake/internal/testkit/testinfra"
)

// The packetlake binary's collect and decode: refusals, a pcap run into Kafka, and a clean
// detach on SIGTERM with --on-stop detach (SIGTERM keeping the pinned program, and
// collect --detach, are in test/e2e's restart tests).
func TestCollectCommand(t *testing.T) {
	bin, err := testinfra.Binary()
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, string, error) {
		var out, errb bytes.Buffer
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}

	t.Run("missing interface", func(t *testing.T) {
		_, stderr, err := run(bin, "collect", "--iface", "nope0", "--brokers", "127.0.0.1:1", "--metrics-addr", "")
		if err == nil || !strings.Contains(stderr, `interface "nope0" does not exist`) {
			t.Fatalf("err %v, stderr %q", err, stderr)
		}
	})
	t.Run("not root", func(t *testing.T) {
		_, stderr, err := run("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
			bin, "collect", "--iface", "lo", "--brokers", "127.0.0.1:1", "--metrics-addr", "")
		if err == nil || !strings.Contains(stderr, "run as root") {
			t.Fatalf("err %v, stderr %q", err, stderr)
		}
	})
	t.Run("decode", func(t *testing.T) {
		stdout, stderr, err := run(bin, "decode", filepath.Join(pcapDir, "tcpdump/dns_udp.pcap"))
		if err != nil || strings.Count(stdout, "\n") != 2 || !strings.Contains(stdout, `"dns_qname":"www.tcpdump.org"`) {
			t.Fatalf("err %v stderr %q stdout:\n%s", err, stderr, stdout)
		}
	})
	t.Run("pcap into kafka", func(t *testing.T) {
		k := startKafka(t)
		path := filepath.Join(pcapDir, "ja4/tls-sni.pcapng")
		_, stderr, err := run(bin, "collect", "--pcap", path, "--brokers", k.Addr(), "--metrics-addr", "", "--host", "cmd-test")
		if err != nil {
			t.Fatalf("collect --pcap: %v\n%s", err, stderr)
		}
		recs := newConsumer(t, k.Addr(), "packets").until(10*time.Second, func(r []*kgo.Record) bool { return countRecords(r) >= 84 })
		if n := countRecords(recs); n != 84 {
			t.Fatalf("%d records for an 84-packet capture\n%s", n, stderr)
		}
	})
	t.Run("sigterm with on-stop detach detaches", func(t *testing.T) {
		v := nettest.NewVethPair(t)
		var stderr bytes.Buffer
		// The broker address leads nowhere inside the namespace: frames are shed, which must not
		// delay the detach.
		cmd := exec.Command("ip", "netns", "exec", v.NS, bin, "collect", "--iface", v.Name, "--brokers", "127.0.0.1:1",
			"--metrics-addr", "", "--flush-timeout", "1s", "--frame-max-age", "20ms", "--on-stop", "detach")
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() })
		if !waitFor(15*time.Second, func() bool { return xdpAttached(t, v) == 1 }) {
			t.Fatalf("collect did not attach:\n%s", stderr.String())
		}
		nettest.Replay(t, v.PeerNS, v.PeerName, filepath.Join(pcapDir, "tcpdump/dns_udp.pcap"), 1000)
		start := time.Now()
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Fatalf("collect still running 15 s after SIGTERM:\n%s", stderr.String())
		}
		if n := xdpAttached(t, v); n != 0 {
			t.Fatalf("%d XDP programs left on %s after SIGTERM", n, v.Name)
		}
		if !strings.Contains(stderr.String(), "collector stopped") {
			t.Errorf("no clean stop logged:\n%s", stderr.String())
		}
		t.Logf("detached and exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	})
}
