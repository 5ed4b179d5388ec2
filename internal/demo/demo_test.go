package demo_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/packetlake/packetlake/internal/demo"
	"github.com/packetlake/packetlake/internal/testkit/testinfra"
)

// The demo runs for real: root, the kernel's BPF, nginx, dnsmasq, curl, dig, openssl, nmap,
// ClickHouse from the cached engine. A missing prerequisite fails; nothing skips.

var env *testinfra.Env

func TestMain(m *testing.M) {
	// Only the binary (and the root check): the demo starts its own ClickHouse and kfake.
	os.Exit(testinfra.Main(m, testinfra.Options{Root: true}, &env))
}

// TestDemo runs the demo for 15 s into a temporary data dir and checks that every packet the
// collector got acknowledged is a row, that the client's names, hosts and scan are in those rows,
// and that nothing it made survives Run.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	sum, err := demo.Run(ctx, demo.Config{
		Binary:   env.Bin,
		DataDir:  filepath.Join(t.TempDir(), "demo"),
		Duration: 15 * time.Second,
		Keep:     true, // t.TempDir removes it
		Out:      t.Output(),
		Logger:   slog.New(slog.NewTextHandler(t.Output(), nil)),
		// A free port: the default 8080 may be taken on a shared machine.
		ConsoleListen: "127.0.0.1:0",
	})
	if err != nil {
		t.Fatalf("demo.Run: %v", err)
	}
	t.Logf("summary: %+v", summaryWithoutProcesses(sum))

	if sum.Rows == 0 || sum.Rows != sum.RecordsAcked || sum.RecordsProduced != sum.RecordsAcked || sum.Lost != 0 {
		t.Errorf("rows %d, records produced %d, acked %d, lost %d: want rows = acked = produced > 0 and nothing lost",
			sum.Rows, sum.RecordsProduced, sum.RecordsAcked, sum.Lost)
	}
	for _, want := range slices.Concat(demo.DNSNames, demo.NXNames) {
		if !slices.Contains(sum.DNSNames, want) {
			t.Errorf("dns_qname %q queried but not stored (stored: %q)", want, sum.DNSNames)
		}
	}
	for _, want := range []string{demo.ShopHost, demo.APIHost} {
		if !slices.Contains(sum.TLSSNI, want) {
			t.Errorf("tls_sni %q sent but not stored (stored: %q)", want, sum.TLSSNI)
		}
		if !slices.Contains(sum.HTTPHosts, want) {
			t.Errorf("http_host %q sent but not stored (stored: %q)", want, sum.HTTPHosts)
		}
	}
	scanDetected := false
	for _, a := range sum.Anomalies {
		scanDetected = scanDetected || strings.HasPrefix(a, "port_scan ") && strings.Contains(a, "198.18.0.2")
	}
	if !scanDetected {
		t.Errorf("the detector did not report the nmap scan as a port_scan from 198.18.0.2; anomalies: %q", sum.Anomalies)
	}
	if sum.ScanPorts < 500 || sum.ScanSource != "198.18.0.2" {
		t.Errorf("scan: %s sent SYNs to %d distinct ports, want the client (198.18.0.2) and >= 500", sum.ScanSource, sum.ScanPorts)
	}
	// The console served, and its packets view of the scan's anomaly holds the scan's SYNs.
	if sum.ConsoleURL == "" || sum.ConsoleScanPackets < 500 {
		t.Errorf("console at %q showed %d packets for the port scan, want >= 500", sum.ConsoleURL, sum.ConsoleScanPackets)
	}
	for _, tool := range []string{"curl", "dig", "openssl", "nping", "nmap"} {
		// A slow run on a loaded machine may time out now and then; none working is a fault.
		if r := sum.Traffic[tool]; r.OK == 0 || r.Failed > r.OK/5 {
			t.Errorf("%s: %d runs ok, %d failed", tool, r.OK, r.Failed)
		}
	}

	checkKernelDrops(t, sum)
	checkTCPHealth(t, sum)
	checkNothingLeft(t, sum)
}

// checkKernelDrops: the datagrams sent to the closed UDP port are each one NO_SOCKET drop in
// the drops table, as many as the server kernel's own NoPorts counter says; the scan's SYNs to
// closed ports are NO_SOCKET drops too, one per closed port probed at least.
func checkKernelDrops(t *testing.T, sum demo.Summary) {
	t.Helper()
	if sum.ClosedPortDatagrams == 0 || sum.ClosedPortDrops != sum.ClosedPortDatagrams || sum.ServerNoPorts != sum.ClosedPortDatagrams {
		t.Errorf("closed UDP port %d: %d datagrams sent, %d NO_SOCKET drops stored, server NoPorts %d: want all equal and > 0",
			demo.ClosedPort, sum.ClosedPortDatagrams, sum.ClosedPortDrops, sum.ServerNoPorts)
	}
	// 53, 80 and 443 listen among the scanned ports 1-1000; a closed port may be probed twice.
	if sum.ScanNoSocketDrops+3 < sum.ScanPorts || sum.ScanNoSocketDrops > 2*sum.ScanPorts {
		t.Errorf("the scan probed %d ports, %d of its TCP packets dropped for NO_SOCKET: want ports-3 to 2×ports", sum.ScanPorts, sum.ScanNoSocketDrops)
	}
	if got, want := sum.KernelDrops["NO_SOCKET"], sum.ClosedPortDrops+sum.ScanNoSocketDrops; got < want {
		t.Errorf("NO_SOCKET drops %d, want at least the closed port's and the scan's %d (all: %v)", got, want, sum.KernelDrops)
	}
}

// checkTCPHealth: every openssl run that worked made one TLS connection to 198.18.0.1:443 (curl's
// HTTPS requests add more), so tcp_health counts at least as many handshakes there, with an RTT.
func checkTCPHealth(t *testing.T, sum demo.Summary) {
	t.Helper()
	s, ok := sum.TCPHealth["198.18.0.1:443 to"]
	if !ok {
		t.Fatalf("tcp_health has no row for 198.18.0.1:443 to: %v", sum.TCPHealth)
	}
	if ok := sum.Traffic["openssl"].OK; s.Handshakes < uint64(ok) || s.Flows < s.Handshakes || s.HandshakeRTTp50ms <= 0 {
		t.Errorf("tcp_health 198.18.0.1:443: %+v; want >= %d handshakes (openssl's), flows >= handshakes, an RTT", s, ok)
	}
	if _, ok := sum.TCPHealth["198.18.0.1:80 to"]; !ok {
		t.Errorf("tcp_health has no row for 198.18.0.1:80 to (curl's HTTP): %v", sum.TCPHealth)
	}
}

// checkNothingLeft: no namespace of the demo, no process it started, and not the program it
// attached.
func checkNothingLeft(t *testing.T, sum demo.Summary) {
	t.Helper()
	if len(sum.Namespaces) != 2 {
		t.Errorf("namespaces %q: want the server's and the client's", sum.Namespaces)
	}
	left, _ := filepath.Glob("/run/netns/pl-demo-*")
	for _, p := range left {
		pid, _ := strconv.Atoi(p[strings.LastIndexByte(p, '-')+1:])
		if pid == os.Getpid() || slices.Contains(sum.Namespaces, filepath.Base(p)) {
			t.Errorf("namespace %s still exists after Run", filepath.Base(p))
		}
	}
	if len(sum.Processes) < 10 {
		t.Errorf("only %d processes recorded: servers, ClickHouse and the traffic tools should all be there", len(sum.Processes))
	}
	for _, p := range sum.Processes {
		if state, alive := processState(p); alive {
			t.Errorf("process %d (%s) still exists after Run (state %s)", p.PID, p.Name, state)
		}
	}
	if sum.ProgramID == 0 {
		t.Fatal("no XDP program id recorded: was the collector ever attached?")
	}
	// The id is freed when the last reference (the link, the collector's fd) is dropped; ids
	// are allocated cyclically, so a fresh program will not have taken it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		prog, err := ebpf.NewProgramFromID(ebpf.ProgramID(sum.ProgramID))
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		if err == nil {
			prog.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("BPF program %d still loaded after Run (err %v)", sum.ProgramID, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// processState reports whether pid still exists as the process the demo started (same command
// name, so a recycled PID does not count). A zombie counts too: the demo must reap what it starts.
func processState(p demo.Process) (string, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.PID) + "/stat")
	if err != nil {
		return "", false
	}
	// pid (comm) state ...: comm may hold spaces and parentheses, so cut at the last ')'.
	s := string(b)
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return "", false
	}
	comm, rest := s[open+1:closing], strings.Fields(s[closing+1:])
	name := p.Name
	if len(name) > 15 {
		name = name[:15]
	}
	if comm != name || len(rest) == 0 {
		return "", false
	}
	return rest[0], true
}

func summaryWithoutProcesses(s demo.Summary) demo.Summary {
	s.Processes = s.Processes[:0:0]
	return s
}
