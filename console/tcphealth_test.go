package console

import (
	"testing"
	"time"
)

// tcpPackets: one connection to 10.0.0.2:8443 worked out by hand — SYN at 1 s, its ACK 5 ms
// later (handshake RTT 5 ms), data 1001–1100 at 2 s and 1101–1200 at 2.1 s, 1001–1100 again at
// 3 s (0.9 s after the highest segment, more than the 5 ms threshold: a retransmission, not
// out-of-order), and an ACK advertising window 0 at 4 s — and a second connection to the same
// service with a data segment of sample_rate 2 (sampled: counted in flows_sampled only).
func tcpPackets() []pkt {
	seg := func(d time.Duration, seq, sport, flags, win, length, rate int) pkt {
		ack := 5000
		if flags == 0x02 {
			ack = 0 // a SYN acknowledges nothing
		}
		return pkt{"ts": at(d), "host": "h1", "iface": "eth0", "seq": 100 + int(d/time.Millisecond), "ip_version": 4,
			"src_addr": "::ffff:10.0.0.7", "dst_addr": "::ffff:10.0.0.2", "ip_proto": 6, "src_port": sport, "dst_port": 8443,
			"tcp_flags": flags, "tcp_seq": seq, "tcp_ack": ack, "tcp_window": win, "payload_len": length,
			"pkt_len": 54 + length, "sample_rate": rate, "ttl": 64}
	}
	return []pkt{
		seg(time.Second, 1000, 41000, 0x02, 500, 0, 1),
		seg(1005*time.Millisecond, 1001, 41000, 0x10, 500, 0, 1),
		seg(2*time.Second, 1001, 41000, 0x18, 500, 100, 1),
		seg(2100*time.Millisecond, 1101, 41000, 0x18, 500, 100, 1),
		seg(3*time.Second, 1001, 41000, 0x18, 500, 100, 1),
		seg(4*time.Second, 1201, 41000, 0x10, 0, 0, 1),
		seg(5*time.Second, 7000, 41001, 0x02, 500, 0, 1),
		seg(6*time.Second, 7001, 41001, 0x18, 500, 100, 2),
	}
}

// The TCP health view shows the tcp_health report's numbers for the hand-built connections.
func TestBrowserTCPHealth(t *testing.T) {
	f := newFixture(t, tcpPackets())
	b := newBrowser(t, f.url)
	if s := b.open("/tcp?from=2026-12-06T10:00:00Z&to=2026-12-06T11:00:00Z"); s != "ready" {
		t.Fatalf("/tcp: state %s", s)
	}
	b.noErrors("/tcp")
	cell := func(title string) string {
		return evalJS[string](b, `(() => {
  const t = document.querySelector('[data-testid=tcp-services]');
  const i = [...t.querySelectorAll('thead th')].findIndex((th) => th.textContent === `+"`"+title+"`"+`);
  const row = [...t.querySelectorAll('tbody tr')].find((tr) => tr.cells[0].textContent === '10.0.0.2:8443 to');
  return row && i >= 0 ? row.cells[i].textContent : 'missing';
})()`)
	}
	for title, want := range map[string]string{"Flows": "2", "Sampled (not counted)": "1", "Retransmissions": "1",
		"Out of order": "0", "Duplicate ACKs": "0", "Zero windows": "1", "Handshakes": "1", "RTT p50": "5.000 ms"} {
		if got := cell(title); got != want {
			t.Errorf("service 10.0.0.2:8443 to, %s: %q, want %q", title, got, want)
		}
	}
	recorded := evalJS[[]string](b, `[...document.querySelectorAll('[data-testid=tcp-flows] tbody tr')].map((tr) => tr.cells[2].textContent)`)
	if len(recorded) != 2 || recorded[0] != "every segment" || recorded[1] != "sampled (up to 1 in 2): counts unknown" {
		t.Errorf("flows' recorded column: %q, want the whole connection then the sampled one", recorded)
	}
	b.screenshot("tcp-health")
}
