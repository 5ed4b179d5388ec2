package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/packetlake/packetlake/collector"
	"github.com/packetlake/packetlake/internal/childproc"
	"github.com/packetlake/packetlake/internal/testkit/nettest"
	"github.com/packetlake/packetlake/query"
)

// TestLiveReceivers (issue 19, who receives the traffic): real nginx and dnsmasq serve in the
// observed namespace, each started inside a cgroup made for the test and named the way
// containerd (in a Kubernetes pod's slice) and Docker name theirs, after the collector with the
// receiver tracer started; curl and dig ask them from the peer namespace over the veth (XDP),
// and one more connection to nginx sends nothing (only nginx's listen can name it). Through Kafka, the
// ingester and ClickHouse, every flow row towards nginx's port names nginx's PID (the one this
// test started), its command, the cgroup id the kernel gives its cgroup directory (the inode
// stat reads), that path, the container id and the pod uid; every flow towards dnsmasq names
// dnsmasq's; a datagram to a port nobody listens on names nobody. top_receivers sums them.
func TestLiveReceivers(t *testing.T) {
	for _, tool := range []string{"nginx", "dnsmasq", "dig", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found in PATH: this test needs it (make test installs it)", tool)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	v := nettest.NewVethPair(t, nettest.WithIPv6())

	const nginxCID = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"
	const podUID = "5f0c3a2e-1b4d-4e6f-8a9b-0c1d2e3f4a5b"
	const dnsCID = "d15ea5e0d15ea5e0d15ea5e0d15ea5e0d15ea5e0d15ea5e0d15ea5e0d15ea5e0"
	root := cgroup2Root(t)
	top := fmt.Sprintf("/receiver-e2e-%d.slice", os.Getpid())
	nginxCg := testCgroup(t, root, top, "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod"+
		strings.ReplaceAll(podUID, "-", "_")+".slice/cri-containerd-"+nginxCID+".scope")
	dnsCg := testCgroup(t, root, top, "/system.slice/docker-"+dnsCID+".scope")

	topic, stats, flows := env.Topic(t, 1), env.Topic(t, 1), env.Topic(t, 1)
	db := strings.ReplaceAll(env.Topic(t, 1), "-", "_")
	cfg := collector.DefaultConfig()
	cfg.Iface, cfg.NetNS = v.Name, v.NS
	cfg.Kafka.Brokers = []string{env.Kafka.Addr()}
	cfg.Topic, cfg.StatsTopic, cfg.FlowsTopic = topic, stats, flows
	cfg.Host = "live-receivers"
	cfg.RingBytes = 8 << 20
	cfg.FrameMaxAge = 50 * time.Millisecond
	// One export, Stop's: every row then covers the flow's packets after the servers read them.
	cfg.FlowInterval = time.Hour
	cfg.Receivers = true
	reg := prometheus.NewRegistry()
	c, err := collector.New(cfg, collector.Dependencies{Logger: slog.New(slog.NewTextHandler(testLogWriter{t}, nil)), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })

	// The servers start after the tracer: nginx's listen(2) is recorded too, which names it for
	// a connection it accepts but never reads from (the bare connect below).
	nginxPID := startInCgroup(t, root+nginxCg, v.NS, "nginx", "-e", filepath.Join(dir, "nginx-error.log"), "-p", dir, "-c", nginxConfig(t, dir))
	dnsPID := startInCgroup(t, root+dnsCg, v.NS, "dnsmasq", dnsmasqArgs(dir, "recv", v.Addr, v.Addr6)...)
	waitListening(t, ctx, v, "tcp", "80")
	waitListening(t, ctx, v, "udp", "53")

	const requests = 5
	for i := range requests {
		nettest.MustExec(t, v.PeerNS, "curl", "-sf", "-o", "/dev/null", "--max-time", "5", fmt.Sprintf("http://%s/r%d", v.Addr, i))
		nettest.MustExec(t, v.PeerNS, "dig", "+short", "+tries=1", "+time=3", "@"+v.Addr.String(), "pl-dns.test")
		nettest.MustExec(t, v.PeerNS, "dig", "+short", "+tries=1", "+time=3", "@"+v.Addr6.String(), "pl-dns.test", "AAAA")
	}
	// A connection that sends nothing: nginx accepts it and reads only its end (no data), so
	// its own socket is never recorded; the listener's entry names nginx.
	if err := nettest.Do(v.PeerNS, func() error {
		c, err := net.DialTimeout("tcp4", net.JoinHostPort(v.Addr.String(), "80"), 5*time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	}); err != nil {
		t.Fatal(err)
	}
	sendMarker(t, v, 40009) // no socket: ICMP port unreachable, no receiver
	// The tracer's own counter on /metrics: at least the servers' reads of the requests.
	if reads := gathered(t, reg, "packetlake_collector_receiver_reads_total"); reads < 3*requests {
		t.Errorf("receiver_reads_total %v, want at least %d", reads, 3*requests)
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("collector Stop: %v", err)
	}

	stop := startIngest(t, ctx, topic, stats, flows, "receivers-"+db, db)
	defer stop()
	ch := env.CH(t)
	want := c.Stats().FlowRowsExported
	var n uint64
	for ctx.Err() == nil {
		if err := ch.QueryRow(ctx, "SELECT count() FROM "+db+".flows").Scan(&n); err == nil && n >= want {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n != want || n == 0 {
		t.Fatalf("%s.flows holds %d rows, the collector exported %d", db, n, want)
	}

	type server struct {
		name      string
		pid       int
		cgroup    string
		container string
		pod       string
		where     string
		wantFlows uint64
	}
	for _, s := range []server{
		{"nginx", nginxPID, nginxCg, nginxCID, podUID, "ip_proto = 6 AND dst_port = 80", requests + 1},
		{"dnsmasq", dnsPID, dnsCg, dnsCID, "", "ip_proto = 17 AND dst_port = 53", 2 * requests},
	} {
		cgid := inode(t, root+s.cgroup)
		var rows []struct {
			Pid       uint32 `ch:"recv_pid"`
			Comm      string `ch:"recv_comm"`
			CgroupID  uint64 `ch:"recv_cgroup_id"`
			Cgroup    string `ch:"recv_cgroup"`
			Container string `ch:"recv_container_id"`
			Pod       string `ch:"recv_pod_uid"`
			Flows     uint64 `ch:"flows"`
		}
		err := ch.Select(ctx, &rows, "SELECT recv_pid, recv_comm, recv_cgroup_id, recv_cgroup, recv_container_id, recv_pod_uid, "+
			"uniqExact(src_addr, src_port) AS flows FROM "+db+".flows WHERE "+s.where+
			" GROUP BY recv_pid, recv_comm, recv_cgroup_id, recv_cgroup, recv_container_id, recv_pod_uid")
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1 {
			t.Errorf("%s: flows name %d different receivers, want exactly %s's: %+v", s.name, len(rows), s.name, rows)
			continue
		}
		r := rows[0]
		if r.Pid != uint32(s.pid) || r.Comm != s.name || r.CgroupID != cgid || r.Cgroup != s.cgroup ||
			r.Container != s.container || r.Pod != s.pod || r.Flows != s.wantFlows {
			t.Errorf("%s: flows name %+v; want pid %d comm %s cgroup id %d path %s container %s pod %q over %d flows",
				s.name, r, s.pid, s.name, cgid, s.cgroup, s.container, s.pod, s.wantFlows)
		}
	}
	var unnamed uint64
	if err := ch.QueryRow(ctx, "SELECT count() FROM "+db+".flows WHERE ip_proto = 17 AND dst_port = 40009 AND recv_pid = 0 AND recv_comm = ''").Scan(&unnamed); err != nil || unnamed != 1 {
		t.Errorf("the datagram to a closed port: %d unnamed rows (%v), want 1", unnamed, err)
	}

	// The report: one row per server, with the flows' exact counts.
	var out bytes.Buffer
	p := query.Params{Since: time.Now().Add(-time.Hour), Until: time.Now().Add(time.Minute), Limit: 100}
	if err := query.Run(ctx, query.Config{ClickHouse: env.CHConfig(db)}, "top_receivers", p, "json", &out); err != nil {
		t.Fatalf("top_receivers: %v", err)
	}
	got := map[string]map[string]any{}
	dec := json.NewDecoder(&out)
	dec.UseNumber()
	for dec.More() {
		r := map[string]any{}
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		got[fmt.Sprint(r["command"])] = r
	}
	for name, where := range map[string]string{"nginx": "dst_port = 80 AND ip_proto = 6", "dnsmasq": "dst_port = 53 AND ip_proto = 17"} {
		var pk uint64
		if err := ch.QueryRow(ctx, "SELECT sum(packets) FROM "+db+".flows WHERE "+where).Scan(&pk); err != nil {
			t.Fatal(err)
		}
		r := got[name]
		if r == nil || fmt.Sprint(r["packets"]) != strconv.FormatUint(pk, 10) || pk == 0 {
			t.Errorf("top_receivers %s: %v, want packets %d", name, r, pk)
		}
	}
	t.Logf("top_receivers: %d rows; nginx pid %d, dnsmasq pid %d", len(got), nginxPID, dnsPID)
}

// cgroup2Root is where the cgroup2 hierarchy is mounted (/sys/fs/cgroup/unified on this VM).
func cgroup2Root(t *testing.T) string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if pre, post, ok := strings.Cut(sc.Text(), " - "); ok && strings.HasPrefix(post, "cgroup2 ") {
			return strings.Fields(pre)[4]
		}
	}
	t.Fatal("no cgroup2 mount")
	return ""
}

// testCgroup makes top+rel under the cgroup2 root and removes it (leaves first) at cleanup,
// after the processes in it are gone. It returns top+rel.
func testCgroup(t *testing.T, root, top, rel string) string {
	t.Helper()
	p := filepath.Join(root, top+rel)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatalf("make test cgroup: %v", err)
	}
	t.Cleanup(func() {
		for d := p; d != root && strings.HasPrefix(d, filepath.Join(root, top)); d = filepath.Dir(d) {
			if err := os.Remove(d); err != nil && !os.IsNotExist(err) && !isBusy(err) {
				t.Errorf("remove test cgroup %s: %v", d, err)
			}
		}
	})
	return top + rel
}

func isBusy(err error) bool { return strings.Contains(err.Error(), "device or resource busy") }

// startInCgroup runs name in namespace ns as a member of the cgroup directory cg from its first
// instruction: a shell joins the cgroup, then execs ip netns exec, which execs the server, so the
// PID is the server's. Stopped by that PID at cleanup (SIGTERM, then SIGKILL).
func startInCgroup(t *testing.T, cg, ns, name string, args ...string) int {
	t.Helper()
	cmd := exec.Command("sh", append([]string{"-c", `echo $$ > "$0/cgroup.procs" && ns=$1 && shift && exec ip netns exec "$ns" "$@"`,
		cg, ns, name}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 3 * time.Second
	if err := childproc.Start(cmd); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, tailString(out.String(), 2000))
		}
	})
	return cmd.Process.Pid
}

// waitListening polls from the observed namespace over its own addresses (nothing crosses the
// veth) until port answers: a TCP connect, or for UDP a DNS query with dig.
func waitListening(t *testing.T, ctx context.Context, v *nettest.Veth, proto, port string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		var err error
		if proto == "tcp" {
			err = nettest.Do(v.NS, func() error {
				c, err := net.DialTimeout("tcp", net.JoinHostPort(v.Addr.String(), port), time.Second)
				if err == nil {
					c.Close()
				}
				return err
			})
		} else {
			_, err = nettest.Exec(ctx, v.NS, "dig", "+short", "+tries=1", "+time=1", "-p", port, "@"+v.Addr.String(), "pl-dns.test")
		}
		if err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("nothing answers on %s/%s in %s", proto, port, v.NS)
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// nginxConfig is one process (master_process off, so the PID started is the one that reads)
// answering every request on port 80, every path it writes inside dir.
func nginxConfig(t *testing.T, dir string) string {
	t.Helper()
	tmp := filepath.Join(dir, "nginx-tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %[2]s/body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    server {
        listen 80 default_server;
        location / { return 200 "ok\n"; }
    }
}
`, dir, tmp)
	p := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// gathered is the value of the metric name in reg (0 when absent).
func gathered(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}
