package bpf

import (
	"errors"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"

	"github.com/packetlake/packetlake/internal/testkit/nettest"
)

// BenchmarkReceiverTracer measures what the receiver tracer adds to a socket read: a 64-byte
// UDP datagram (one packet, one read) and a 64-byte TCP write then read, over loopback in a
// test namespace, with the program detached (off) and attached (on) in alternating blocks of
// the same run, so load on the machine hits both alike. Each b.N iteration is one off block and
// one on block of `block` round trips each, plus one with an empty program on the same
// tracepoint. Metrics: ns per round trip off and on (means), and the medians over the turns of
// on/off and of the difference per round trip with the tracer and with the empty program: the
// tracer's cost per read (the XDP parser's per-packet cost does not
// change: receiver.c is a separate program on the socket read path).
func BenchmarkReceiverTracer(b *testing.B) {
	r, err := LoadReceivers(0)
	if err != nil {
		b.Fatalf("load receiver tracer: %v", err)
	}
	b.Cleanup(func() { r.Close() })
	v := nettest.NewVethPair(b)
	const block = 200
	for _, proto := range []string{"udp", "tcp", "tcp-connect"} {
		b.Run(proto, func(b *testing.B) {
			// The empty program sits where the tracer's work for this case runs: reads, or a
			// connection's TCP state changes.
			empty := newEmptyRawTP(b, "sock_recv_length")
			var send, recv func()
			buf, out := make([]byte, 64), make([]byte, 64)
			err := v.Do(func() error {
				if proto == "tcp-connect" {
					return nil
				}
				if proto == "udp" {
					srv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
					if err != nil {
						return err
					}
					cl, err := net.DialUDP("udp4", nil, srv.LocalAddr().(*net.UDPAddr))
					if err != nil {
						return err
					}
					b.Cleanup(func() { srv.Close(); cl.Close() })
					send = func() { cl.Write(out) }
					recv = func() { srv.Read(buf) }
					return nil
				}
				ln, err := net.Listen("tcp4", "127.0.0.1:0")
				if err != nil {
					return err
				}
				defer ln.Close()
				cl, err := net.Dial("tcp4", ln.Addr().String())
				if err != nil {
					return err
				}
				srv, err := ln.Accept()
				if err != nil {
					return err
				}
				b.Cleanup(func() { srv.Close(); cl.Close() })
				send = func() { cl.Write(out) }
				recv = func() {
					for n := 0; n < len(buf); {
						m, err := srv.Read(buf[n:])
						if err != nil {
							return
						}
						n += m
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			if proto == "tcp-connect" {
				// A connection made and closed per round trip, over the root namespace's
				// loopback (a new socket each time, which a test namespace's would need a
				// setns for): ~5 state changes each, one of them in connect(2), none LISTEN.
				empty = newEmptyRawTP(b, "inet_sock_set_state")
				ln, err := net.Listen("tcp4", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { ln.Close() })
				var c net.Conn
				send = func() {
					if c, err = net.Dial("tcp4", ln.Addr().String()); err != nil {
						b.Fatal(err)
					}
				}
				recv = func() {
					s, err := ln.Accept()
					if err != nil {
						b.Fatal(err)
					}
					c.Close()
					s.Close()
				}
			}
			run := func() time.Duration {
				t0 := time.Now()
				for range block {
					send()
					recv()
				}
				return time.Since(t0)
			}
			run() // warm up: the socket's entry is written once, then only looked up
			// Many short blocks in turn (off, empty program, tracer; the order rotating, so
			// no mode always follows an attach), each turn's differences kept: the median turn
			// resists the bursts of the other tests sharing the machine better than sums do.
			var addTracer, addEmpty, ratios []float64
			var sums [3]time.Duration
			modes := []func() error{
				func() error { return errors.Join(r.Detach(), empty.detach()) },
				func() error { return errors.Join(r.Detach(), empty.attach()) },
				func() error { return errors.Join(empty.detach(), r.Attach()) },
			}
			seen0, _, _ := r.Counts()
			load0, _ := os.ReadFile("/proc/loadavg")
			b.ResetTimer()
			for i := range b.N {
				var d [3]time.Duration
				for k := range 3 {
					m := (i + k) % 3
					if err := modes[m](); err != nil {
						b.Fatal(err)
					}
					d[m] = run()
					sums[m] += d[m]
				}
				addTracer = append(addTracer, float64((d[2]-d[0]).Nanoseconds())/block)
				addEmpty = append(addEmpty, float64((d[1]-d[0]).Nanoseconds())/block)
				ratios = append(ratios, float64(d[2])/float64(d[0]))
			}
			b.StopTimer()
			r.Detach()
			seen1, _, _ := r.Counts()
			load1, _ := os.ReadFile("/proc/loadavg")
			if proto != "tcp-connect" && seen1-seen0 < uint64(b.N*block) {
				b.Fatalf("the tracer saw %d reads while attached, want at least %d", seen1-seen0, b.N*block)
			}
			median := func(x []float64) float64 { slices.Sort(x); return x[len(x)/2] }
			n := float64(b.N * block)
			b.ReportMetric(float64(sums[0].Nanoseconds())/n, "ns/roundtrip-off")
			b.ReportMetric(float64(sums[2].Nanoseconds())/n, "ns/roundtrip-on")
			b.ReportMetric(median(ratios), "median-on/off")
			b.ReportMetric(median(addTracer), "median-ns/read-tracer")
			b.ReportMetric(median(addEmpty), "median-ns/read-empty-prog")
			b.Logf("load average before %s, after %s", strings.Fields(string(load0))[0], strings.Fields(string(load1))[0])
		})
	}
}

// emptyRawTP is a program that returns at once, on the same tracepoint: what attaching anything
// there costs (the kernel's dispatch), apart from what receiver.c does.
type emptyRawTP struct {
	prog *ebpf.Program
	tp   string
	l    link.Link
}

func newEmptyRawTP(b *testing.B, tracepoint string) *emptyRawTP {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.RawTracepoint, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}})
	if err != nil {
		b.Fatal(err)
	}
	e := &emptyRawTP{prog: p, tp: tracepoint}
	b.Cleanup(func() { e.detach(); p.Close() })
	return e
}

func (e *emptyRawTP) attach() (err error) {
	if e.l == nil {
		e.l, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: e.tp, Program: e.prog})
	}
	return err
}

func (e *emptyRawTP) detach() error {
	if e.l == nil {
		return nil
	}
	err := e.l.Close()
	e.l = nil
	return err
}
