package e2e

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/packetlake/packetlake/internal/childproc"
	"github.com/packetlake/packetlake/internal/testkit/nettest"
)

// nobody is the unprivileged user the collector runs as in these tests.
const nobody = "65534"

// threeCaps is CapEff of a process holding exactly CAP_NET_ADMIN (12), CAP_PERFMON (38) and
// CAP_BPF (39).
const threeCaps = uint64(1)<<12 | uint64(1)<<38 | uint64(1)<<39

// TestCollectAsNonRootWithThreeCapabilities runs `packetlake collect` as uid 65534 with exactly
// CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON, the two ways an operator grants them: file
// capabilities on the binary (what the image does: setcap ...=ep, the kernel grants them at
// exec within the bounding set) and ambient capabilities (systemd's AmbientCapabilities,
// setpriv). The program loads, attaches to a veth, records pings that reach Kafka, and
// detaches on SIGTERM. With any one of the three missing it refuses to start, naming it, and
// attaches nothing.
func TestCollectAsNonRootWithThreeCapabilities(t *testing.T) {
	for _, tool := range []string{"setpriv", "setcap", "curl", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: this test needs it (apt-get install util-linux libcap2-bin curl iputils-ping)", tool)
		}
	}
	// A directory uid 65534 can enter, with a plain copy of the binary and one with file caps.
	dir, err := os.MkdirTemp("", "packetlake-caps-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	plain, capped := filepath.Join(dir, "packetlake"), filepath.Join(dir, "packetlake-collector")
	for _, p := range []string{plain, capped} {
		copyFile(t, env.Bin, p)
	}
	if out, err := exec.Command("setcap", "cap_bpf,cap_net_admin,cap_perfmon=ep", capped).CombinedOutput(); err != nil {
		t.Fatalf("setcap: %v\n%s", err, out)
	}
	drop := []string{"setpriv", "--reuid=" + nobody, "--regid=" + nobody, "--clear-groups"}

	t.Run("file capabilities", func(t *testing.T) {
		collectAsNobody(t, append(drop, "--bounding-set=-all,+bpf,+net_admin,+perfmon", "--inh-caps=-all", capped))
	})
	t.Run("ambient capabilities", func(t *testing.T) {
		collectAsNobody(t, append(drop, "--inh-caps=-all,+bpf,+net_admin,+perfmon", "--ambient-caps=+bpf,+net_admin,+perfmon", plain))
	})
	for _, missing := range []string{"bpf", "net_admin", "perfmon"} {
		t.Run("without "+missing, func(t *testing.T) {
			var have []string
			for _, c := range []string{"bpf", "net_admin", "perfmon"} {
				if c != missing {
					have = append(have, "+"+c)
				}
			}
			v := nettest.NewVethPair(t)
			args := append(drop, "--inh-caps=-all,"+strings.Join(have, ","), "--ambient-caps="+strings.Join(have, ","), plain,
				"collect", "--iface", v.Name, "--brokers", "127.0.0.1:9", "--metrics-addr", "")
			out, err := exec.Command("ip", append([]string{"netns", "exec", v.NS}, args...)...).CombinedOutput()
			want := "missing CAP_" + strings.ToUpper(missing)
			if err == nil || !strings.Contains(string(out), want+" (uid "+nobody+")") {
				t.Errorf("collect without CAP_%s: %v, want a refusal naming only it (%q):\n%s", strings.ToUpper(missing), err, want, out)
			}
			if link, _ := exec.Command("ip", "-n", v.NS, "link", "show", v.Name).CombinedOutput(); strings.Contains(string(link), "xdp") {
				t.Errorf("an XDP program is attached after the refusal:\n%s", link)
			}
			t.Logf("without CAP_%s: %s", strings.ToUpper(missing), lastLine(string(out)))
		})
	}
}

// collectAsNobody runs collect through the privilege-dropping prefix (ending in the binary) in
// a fresh veth pair's namespace, with kafka-local in the same namespace, and checks the process
// holds exactly the three capabilities, attaches, ships the peer's pings and detaches.
func collectAsNobody(t *testing.T, prefix []string) {
	v := nettest.NewVethPair(t)
	kw := &readyWriter{ready: "kafka-local ready", seen: make(chan struct{})}
	kl := exec.Command("ip", "netns", "exec", v.NS, env.Bin, "kafka-local", "--data", t.TempDir(), "--port", "0")
	kl.Stdout, kl.Stderr = kw, kw
	startUntil(t, kl, kw, "kafka-local")
	_, rest, _ := strings.Cut(kw.output(), "kafka-local ready addr=")
	addr, _, _ := strings.Cut(rest, " ")

	metrics := "127.0.0.1:" + strconv.Itoa(19464+int(time.Now().UnixNano()%1000))
	cw := &readyWriter{ready: "serving /metrics", seen: make(chan struct{})}
	args := append(append([]string{"netns", "exec", v.NS}, prefix...),
		"collect", "--iface", v.Name, "--brokers", addr, "--metrics-addr", metrics, "--host", "caps-test", "--xdp-mode", "generic")
	col := exec.Command("ip", args...)
	col.Stdout, col.Stderr = cw, cw
	stop := startUntil(t, col, cw, "collect")

	// ip netns exec and setpriv exec in place: the PID is the collector's.
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", col.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	uid := regexp.MustCompile(`(?m)^Uid:\s+(\d+)\s+(\d+)`).FindStringSubmatch(string(status))
	capEff := regexp.MustCompile(`(?m)^CapEff:\s+([0-9a-f]+)`).FindStringSubmatch(string(status))
	if uid == nil || uid[1] != nobody || uid[2] != nobody {
		t.Errorf("collector runs as %v, want uid %s", uid, nobody)
	}
	if eff, _ := strconv.ParseUint(capEff[1], 16, 64); eff != threeCaps {
		t.Errorf("collector CapEff %#x, want exactly CAP_BPF|CAP_NET_ADMIN|CAP_PERFMON %#x", eff, threeCaps)
	}
	healthy := false
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && !healthy; time.Sleep(200 * time.Millisecond) {
		out, _ := exec.Command("ip", "netns", "exec", v.NS, "curl", "-sf", "http://"+metrics+"/healthz").CombinedOutput()
		healthy = strings.TrimSpace(string(out)) == "ok"
	}
	if !healthy {
		t.Fatalf("collector never healthy:\n%s", cw.output())
	}
	if link, _ := exec.Command("ip", "-n", v.NS, "link", "show", v.Name).CombinedOutput(); !strings.Contains(string(link), "xdp") {
		t.Errorf("no XDP program on %s while collecting:\n%s", v.Name, link)
	}
	if out, err := exec.Command("ip", "netns", "exec", v.PeerNS, "ping", "-c", "20", "-i", "0.05", "-W", "1", v.Addr.String()).CombinedOutput(); err != nil {
		t.Fatalf("ping: %v\n%s", err, out)
	}
	acked, last := 0.0, ""
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && acked < 20; time.Sleep(200 * time.Millisecond) {
		out, _ := exec.Command("ip", "netns", "exec", v.NS, "curl", "-sf", "http://"+metrics+"/metrics").CombinedOutput()
		last = string(out)
		if m := regexp.MustCompile(`(?m)^packetlake_collector_records_acked_total(?:\{[^}]*\})? (\S+)`).FindStringSubmatch(string(out)); m != nil {
			acked, _ = strconv.ParseFloat(m[1], 64)
		}
	}
	if acked < 20 {
		var lines []string
		for _, l := range strings.Split(last, "\n") {
			if strings.HasPrefix(l, "packetlake_collector_") {
				lines = append(lines, l)
			}
		}
		t.Errorf("records acknowledged by Kafka: %v, want the 20 echo requests XDP saw arrive; metrics:\n%s\nlog:\n%s", acked, strings.Join(lines, "\n"), cw.output())
	}
	if err := stop(); err != nil {
		t.Errorf("collect as uid %s exited with %v on SIGTERM:\n%s", nobody, err, cw.output())
	}
	if link, _ := exec.Command("ip", "-n", v.NS, "link", "show", v.Name).CombinedOutput(); strings.Contains(string(link), "xdp") {
		t.Errorf("XDP program still attached after the collector stopped:\n%s", link)
	}
}

// startUntil starts cmd and waits for w's ready text; the returned stop sends SIGTERM and
// returns the exit error (also run at cleanup).
func startUntil(t *testing.T, cmd *exec.Cmd, w *readyWriter, label string) (stop func() error) {
	t.Helper()
	if err := childproc.Start(cmd); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var result error
	stopped := false
	stop = func() error {
		if stopped {
			return result
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case result = <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			result = fmt.Errorf("%s ignored SIGTERM for 30 s: %v", label, <-exited)
		}
		return result
	}
	t.Cleanup(func() { stop() })
	select {
	case <-w.seen:
	case err := <-exited:
		stopped, result = true, err
		t.Fatalf("%s exited before it was ready: %v\n%s", label, err, w.output())
	case <-time.After(30 * time.Second):
		t.Fatalf("%s not ready after 30 s:\n%s", label, w.output())
	}
	return stop
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func lastLine(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return l[len(l)-1]
}
