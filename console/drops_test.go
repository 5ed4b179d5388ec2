package console

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// oneHour is the range of the drops and receivers tests: it leaves out the 11:10 rows of h2.
var oneHour = url.Values{"from": {"2026-12-06T10:00:00Z"}, "to": {"2026-12-06T11:00:00Z"}}

// handDrops: drops rows are deltas, so each count below is a sum worked out by hand.
//
//	time   host iface observed reason          proto src              dst              packets bytes
//	10:00:05 h1 eth0  1        NO_SOCKET       UDP   10.0.0.3:53000   10.0.0.2:9999    3       300
//	10:00:10 h1 eth0  1        NETFILTER_DROP  TCP   10.0.0.1:40000   10.0.0.2:22      5       330
//	10:01:10 h1 eth0  1        NO_SOCKET       UDP   10.0.0.3:53000   10.0.0.2:9999    2       200
//	10:01:20 h1 ""    0        NO_SOCKET       (not seen: no flow)                     7       700
//	10:02:00 h1 eth0  1        UDP_CSUM        UDP   [2001:db8::1]:1234 [2001:db8::2]:53 1     90
//	11:10:00 h2 eth0  1        NO_SOCKET       UDP   10.0.0.9:1       10.0.0.2:9999    4       400  (outside)
func handDrops() []pkt {
	d := func(ts time.Duration, host, iface string, observed int, reason string, ver, proto int, src, dst string, sport, dport, packets, bytes int) pkt {
		return pkt{"ts": at(ts), "host": host, "iface": iface, "collector_id": 7, "run": 1, "export_seq": int(ts / time.Second),
			"observed": observed, "reason": reason, "ip_version": ver, "ip_proto": proto, "src_addr": src, "dst_addr": dst,
			"src_port": sport, "dst_port": dport, "packets": packets, "bytes": bytes}
	}
	return []pkt{
		d(5*time.Second, "h1", "eth0", 1, "NO_SOCKET", 4, 17, "::ffff:10.0.0.3", "::ffff:10.0.0.2", 53000, 9999, 3, 300),
		d(10*time.Second, "h1", "eth0", 1, "NETFILTER_DROP", 4, 6, "::ffff:10.0.0.1", "::ffff:10.0.0.2", 40000, 22, 5, 330),
		d(70*time.Second, "h1", "eth0", 1, "NO_SOCKET", 4, 17, "::ffff:10.0.0.3", "::ffff:10.0.0.2", 53000, 9999, 2, 200),
		d(80*time.Second, "h1", "", 0, "NO_SOCKET", 0, 0, "::", "::", 0, 0, 7, 700),
		d(120*time.Second, "h1", "eth0", 1, "UDP_CSUM", 6, 17, "2001:db8::1", "2001:db8::2", 1234, 53, 1, 90),
		d(70*time.Minute, "h2", "eth0", 1, "NO_SOCKET", 4, 17, "::ffff:10.0.0.9", "::ffff:10.0.0.2", 1, 9999, 4, 400),
	}
}

// handReceivers: flow exports (deltas) naming the process that read each flow's socket.
//
//	time     host proto src             dst            packets bytes pid  comm     container pod
//	10:00:05 h1   TCP   10.0.0.1:40000  10.0.0.2:443   10      5000  4242 nginx    c0ffee    pod-1
//	10:01:05 h1   TCP   10.0.0.1:40000  10.0.0.2:443   4       2000  4242 nginx    c0ffee    pod-1
//	10:00:05 h1   UDP   10.0.0.3:53000  10.0.0.2:53    2       160   777  dnsmasq
//	10:00:06 h1   UDP   10.0.0.4:53001  10.0.0.2:53    1       80    777  dnsmasq
//	10:00:05 h1   UDP   10.0.0.3:53001  10.0.0.2:9999  3       300   0    (none: nobody read it)
//	11:10:00 h2   TCP   10.0.0.5:5000   10.0.0.2:22    9       900   9    sshd               (outside)
func handReceivers() []pkt {
	fl := func(ts time.Duration, host string, proto int, src string, sport int, dport, packets, bytes, pid int, comm, container, pod string) pkt {
		return pkt{"ts": at(ts), "host": host, "iface": "eth0", "collector_id": 7, "ip_version": 4, "ip_proto": proto,
			"src_addr": src, "dst_addr": "::ffff:10.0.0.2", "src_port": sport, "dst_port": dport, "packets": packets, "bytes": bytes,
			"recv_pid": pid, "recv_comm": comm, "recv_container_id": container, "recv_pod_uid": pod}
	}
	return []pkt{
		fl(5*time.Second, "h1", 6, "::ffff:10.0.0.1", 40000, 443, 10, 5000, 4242, "nginx", "c0ffee", "pod-1"),
		fl(65*time.Second, "h1", 6, "::ffff:10.0.0.1", 40000, 443, 4, 2000, 4242, "nginx", "c0ffee", "pod-1"),
		fl(5*time.Second, "h1", 17, "::ffff:10.0.0.3", 53000, 53, 2, 160, 777, "dnsmasq", "", ""),
		fl(6*time.Second, "h1", 17, "::ffff:10.0.0.4", 53001, 53, 1, 80, 777, "dnsmasq", "", ""),
		fl(5*time.Second, "h1", 17, "::ffff:10.0.0.3", 53001, 9999, 3, 300, 0, "", "", ""),
		fl(70*time.Minute, "h2", 6, "::ffff:10.0.0.5", 5000, 22, 9, 900, 9, "sshd", "", ""),
	}
}

func dropsFixture(t *testing.T) *fixture {
	f := newFixture(t, nil)
	f.insert(t, "drops", handDrops())
	f.insert(t, "flows", handReceivers())
	return f
}

// rowsOf prints chosen keys of each row as "a/b/c", one string per row, in order.
func rowsOf(rows []map[string]any, keys ...string) []string {
	var out []string
	for _, r := range rows {
		var parts []string
		for _, k := range keys {
			if n, ok := r[k].(float64); ok { // JSON numbers: print 1796551200000, not 1.7965512e+12
				parts = append(parts, strconv.FormatFloat(n, 'f', -1, 64))
				continue
			}
			parts = append(parts, fmt.Sprint(r[k]))
		}
		out = append(out, strings.Join(parts, "/"))
	}
	return out
}

func eqRows(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("%s:\n got  %q\n want %q", what, got, want)
	}
}

func TestDropsHandChecked(t *testing.T) {
	f := dropsFixture(t)
	var r dropsResponse
	if code, body := f.get(t, "/api/v1/drops", oneHour, &r); code != 200 {
		t.Fatalf("drops: %d %s", code, body)
	}
	// One hour: 1-minute buckets (pickStep), axis 10:00 to 11:00.
	if r.Step != 60 || r.From != base.UnixMilli() || r.To != base.Add(time.Hour).UnixMilli() {
		t.Errorf("step %d from %d to %d, want 60, %d, %d", r.Step, r.From, r.To, base.UnixMilli(), base.Add(time.Hour).UnixMilli())
	}
	m := func(d time.Duration) string { return fmt.Sprint(base.Add(d).UnixMilli()) }
	eqRows(t, "series", rowsOf(r.Series, "t", "reason", "observed", "packets"), []string{
		m(0) + "/NETFILTER_DROP/1/5", m(0) + "/NO_SOCKET/1/3",
		m(time.Minute) + "/NO_SOCKET/0/7", m(time.Minute) + "/NO_SOCKET/1/2",
		m(2*time.Minute) + "/UDP_CSUM/1/1"})
	eqRows(t, "reasons", rowsOf(r.Reasons, "reason", "observed", "packets", "bytes"), []string{
		"NO_SOCKET/0/7/700", "NETFILTER_DROP/1/5/330", "NO_SOCKET/1/5/500", "UDP_CSUM/1/1/90"})
	// Only the drops packetlake saw have a flow; NO_SOCKET's 5 packets beat NETFILTER_DROP's 5 on bytes.
	eqRows(t, "flows", rowsOf(r.Flows, "host", "iface", "reason", "proto", "src", "src_port", "dst", "dst_port", "packets", "bytes"), []string{
		"h1/eth0/NO_SOCKET/UDP/10.0.0.3/53000/10.0.0.2/9999/5/500",
		"h1/eth0/NETFILTER_DROP/TCP/10.0.0.1/40000/10.0.0.2/22/5/330",
		"h1/eth0/UDP_CSUM/UDP/2001:db8::1/1234/2001:db8::2/53/1/90"})

	// The filter narrows every part; the drops of packets packetlake did not see have no flow.
	f.get(t, "/api/v1/drops", with(oneHour, "filter", "ip_proto = udp AND dst_addr << 10.0.0.0/8"), &r)
	eqRows(t, "reasons, UDP to 10/8", rowsOf(r.Reasons, "reason", "observed", "packets"), []string{"NO_SOCKET/1/5"})
	eqRows(t, "flows, UDP to 10/8", rowsOf(r.Flows, "reason", "packets"), []string{"NO_SOCKET/5"})
	f.get(t, "/api/v1/drops", with(oneHour, "filter", "dst_port = 53"), &r)
	eqRows(t, "series, dst_port 53", rowsOf(r.Series, "t", "reason", "packets"), []string{m(2*time.Minute) + "/UDP_CSUM/1"})
	// The whole day: h2's drops at 11:10 count too.
	f.get(t, "/api/v1/drops", with(twoHours, "filter", "dst_port = 9999"), &r)
	eqRows(t, "flows, two hours", rowsOf(r.Flows, "host", "src", "packets"), []string{"h1/10.0.0.3/5", "h2/10.0.0.9/4"})
}

func TestReceiversHandChecked(t *testing.T) {
	f := dropsFixture(t)
	var r struct{ Receivers []map[string]any }
	if code, body := f.get(t, "/api/v1/receivers", oneHour, &r); code != 200 {
		t.Fatalf("receivers: %d %s", code, body)
	}
	eqRows(t, "receivers", rowsOf(r.Receivers, "host", "pid", "comm", "container", "pod", "packets", "bytes", "flows"), []string{
		"h1/4242/nginx/c0ffee/pod-1/14/7000/1", "h1/0/(none)///3/300/1", "h1/777/dnsmasq///3/240/2"})
	f.get(t, "/api/v1/receivers", with(oneHour, "filter", "dst_port = 53"), &r)
	eqRows(t, "receivers on port 53", rowsOf(r.Receivers, "comm", "packets", "bytes", "flows"), []string{"dnsmasq/3/240/2"})
	// The packets view's flow counters name the receiver of each flow too.
	var fl flowsResponse
	f.get(t, "/api/v1/flows", with(oneHour, "filter", "dst_port IN (443, 9999)"), &fl)
	eqRows(t, "flows' receivers", rowsOf(fl.Flows, "dst_port", "packets", "recv_pid", "recv_comm", "recv_container", "recv_pod"), []string{
		"443/14/4242/nginx/c0ffee/pod-1", "9999/3/0///"})
}

// A filter on a column the table lacks, or a broken one, is a 400 that says so.
func TestDropsBadInput(t *testing.T) {
	f := dropsFixture(t)
	for _, c := range []struct {
		path string
		v    url.Values
		want string
	}{
		{"/api/v1/drops", with(oneHour, "filter", "tls_sni = 'a.example'"), "the drops table has no tls_sni"},
		{"/api/v1/drops", with(oneHour, "filter", "dst_port >"), "expected a value"},
		{"/api/v1/drops", with(oneHour, "filter", "nope = 1"), "unknown column"},
		{"/api/v1/drops", url.Values{"from": {"yesterday"}}, "want now, now-6h"},
		{"/api/v1/receivers", with(oneHour, "filter", "dns_qname = 'a.example'"), "the flow counters have no dns_qname"},
		{"/api/v1/receivers", with(oneHour, "filter", "src_addr << 10.0.0.0/33"), "is not a prefix"},
	} {
		code, body := f.get(t, c.path, c.v, nil)
		if code != 400 || !strings.Contains(body, c.want) {
			t.Errorf("%s?%s: %d %s, want 400 with %q", c.path, c.v.Encode(), code, strings.TrimSpace(body), c.want)
		}
	}
}

// The Drops and Receivers views show the hand-worked numbers: the chart's stacks per reason,
// the tables' rows; a filter on a column the drops table lacks is shown, not swallowed.
func TestBrowserDropsAndReceivers(t *testing.T) {
	f := dropsFixture(t)
	b := newBrowser(t, f.url)
	if s := b.open("/drops?from=2026-12-06T10:00:00Z&to=2026-12-06T11:00:00Z"); s != "ready" {
		t.Fatalf("/drops: state %s", s)
	}
	b.noErrors("/drops")
	cells := func(testid string) []string {
		return evalJS[[]string](b, `[...document.querySelectorAll('[data-testid=`+testid+`] tbody tr')].map((tr) => [...tr.cells].map((td) => td.textContent).join('|'))`)
	}
	eqRows(t, "reasons table", cells("drop-reasons"), []string{
		"NO_SOCKET|no: other interface or made on the host|7|700", "NETFILTER_DROP|yes|5|330", "NO_SOCKET|yes|5|500", "UDP_CSUM|yes|1|90"})
	eqRows(t, "flows table", cells("drop-flows"), []string{
		"h1|eth0|NO_SOCKET|UDP|10.0.0.3:53000|10.0.0.2:9999|5|500",
		"h1|eth0|NETFILTER_DROP|TCP|10.0.0.1:40000|10.0.0.2:22|5|330",
		"h1|eth0|UDP_CSUM|UDP|[2001:db8::1]:1234|[2001:db8::2]:53|1|90"})
	// The chart: one stacked series per reason (drops elsewhere apart), 60 one-minute bars.
	series := evalJS[[]string](b, `echarts.getInstanceByDom(document.querySelector('[data-testid=chart]')).getOption().series
  .map((s) => s.name + '|' + s.data.length + '|' + s.data.filter((p) => p[1] > 0).map((p) => new Date(p[0]).toISOString().slice(11, 16) + '=' + p[1]).join(','))`)
	eqRows(t, "chart series", series, []string{
		"NO_SOCKET (elsewhere)|60|10:01=7", "NETFILTER_DROP|60|10:00=5", "NO_SOCKET|60|10:00=3,10:01=2", "UDP_CSUM|60|10:02=1"})
	b.screenshot("drops")

	if s := b.open("/drops?filter=" + url.QueryEscape("tls_sni = 'a'")); s != "error" {
		t.Fatalf("/drops with a filter on tls_sni: state %s, want error", s)
	}
	if msg := evalJS[string](b, `document.querySelector('[data-testid=error]').textContent`); !strings.Contains(msg, "the drops table has no tls_sni") {
		t.Errorf("error shown: %q", msg)
	}
	b.mu.Lock()
	b.errs = nil // the 400 the browser logged is the one asked for
	b.mu.Unlock()

	if s := b.open("/receivers?from=2026-12-06T10:00:00Z&to=2026-12-06T11:00:00Z"); s != "ready" {
		t.Fatalf("/receivers: state %s", s)
	}
	b.noErrors("/receivers")
	eqRows(t, "receivers table", cells("receivers"), []string{
		"h1|4242|nginx|c0ffee|pod-1|14|7,000|1", "h1|–|(none)|–|–|3|300|1", "h1|777|dnsmasq|–|–|3|240|2"})
	b.screenshot("receivers")

	if s := b.open("/packets?from=2026-12-06T10:00:00Z&to=2026-12-06T11:00:00Z&filter=" + url.QueryEscape("dst_port = 443")); s != "ready" {
		t.Fatalf("/packets: state %s", s)
	}
	b.noErrors("/packets")
	recv := evalJS[[]string](b, `[...document.querySelectorAll('[data-testid=flows-table] tbody tr')].map((tr) => tr.cells[4].textContent)`)
	eqRows(t, "packets view, flow received by", recv, []string{"nginx (4242) container c0ffee pod pod-1"})

	// At phone width neither view is wider than the screen (tables scroll inside their frame).
	b.run(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	for _, v := range []string{"/drops?from=2026-12-06T10:00:00Z&to=2026-12-06T11:00:00Z", "/receivers?from=2026-12-06T10:00:00Z&to=2026-12-06T11:00:00Z"} {
		if s := b.open(v); s != "ready" {
			t.Errorf("%s at phone width: %s", v, s)
		}
		if overflow := evalJS[int](b, `document.documentElement.scrollWidth - window.innerWidth`); overflow > 0 {
			t.Errorf("%s at phone width is %d px wider than the screen", v, overflow)
		}
		b.noErrors(v + " at phone width")
	}
	b.screenshot("drops-phone")
}
