package bpf

import (
	"bytes"
	"errors"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/packetlake/packetlake/internal/testkit/nettest"
	"github.com/packetlake/packetlake/record"
	"github.com/packetlake/packetlake/schema"
	"golang.org/x/sys/unix"
)

// benchRing is the collector's default RingBytes (collector/config.go), so the parser benchmarks
// time the program as the collector attaches it (BENCH.md, session 10); bpf.Config's own default
// is 16 MiB (priced the same, BENCH.md "Why the ratio moves").
const benchRing = 64 << 20

type benchPacket struct {
	name  string
	frame []byte
}

// benchPackets: hand-built SYN, DNS and VLAN frames; a real TLS ClientHello and HTTP GET.
func benchPackets(b *testing.B, e *env) []benchPacket {
	cases := map[string][]byte{}
	for _, c := range parseCases() {
		cases[c.name] = c.frame
	}
	vlanSyn := cat(ether(0x0800, tag{0x8100, 100}), ip4{ttl: 64, proto: ipProto.TCP, flags: 2}.build(
		tcp{sport: 40000, dport: 443, flags: 0x002, win: 64240, opts: synOpts}.build(nil)))
	pick := func(path string, ok func(decoded) bool) []byte {
		fr, _, err := nettest.ReadPcap(pcapDir + "/" + path)
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range fr {
			if ok(e.run(b, f.Data, false)) {
				return f.Data
			}
		}
		b.Fatalf("%s: no frame fits", path)
		return nil
	}
	hello := pick("ja4/tls-sni.pcapng", func(d decoded) bool {
		return d.k.L7Kind == schema.L7TLS && len(d.k.Snippet) > 5 && d.k.Snippet[5] == 1
	})
	get := pick("ja4/single-packets.pcap", func(d decoded) bool {
		return d.k.L7Kind == schema.L7HTTP && bytes.HasPrefix(d.k.Snippet, []byte("GET "))
	})
	return []benchPacket{
		{"tcp_syn", cases["ipv4_tcp_syn"]},
		{"dns_query", cases["ipv4_udp_dns"]},
		{"dns_ipv6", cases["ipv6_udp_dns"]},
		{"vlan_tcp_syn", vlanSyn},
		{"tls_client_hello", hello},
		{"http_get", get},
	}
}

// BenchmarkParser measures ns/packet with BPF_PROG_TEST_RUN (repeat), the kernel's own timing,
// side by side for: the empty XDP program (the harness), the per-record design kept as
// pl_xdp_record (one ring sample and wake-up check per packet) and the batched parser as AttachXDP
// attaches it on an ordinary MTU, pl_xdp_linear (records staged per CPU, 32 to a ring sample). The ring is drained between chunks with the timer
// stopped, so every record is really written (ring_full stays 0, checked) and the reader's cost
// on another CPU is not part of the number.
func BenchmarkParser(b *testing.B) {
	e := newEnv(b, Config{RingBytes: benchRing})
	for _, p := range benchPackets(b, e) {
		for _, prog := range []struct {
			name string
			p    *ebpf.Program
		}{{"empty", e.o.objs.PlXdpPass}, {"record", e.o.objs.PlXdpRecord}, {"batched", e.o.xdpProg()}} {
			b.Run(p.name+"/"+prog.name, func(b *testing.B) {
				before := readStatsB(b, e)
				// Records per chunk: half the ring, at the largest record size.
				chunk := benchRing / 2 / (record.KernelRecordSize + record.KernelTunnelSize + schema.SnippetMax + 8)
				var total time.Duration
				b.ResetTimer()
				for done := 0; done < b.N; {
					n := min(chunk, b.N-done)
					ret, per, err := prog.p.Benchmark(p.frame, n, nil)
					if err != nil || ret != xdpPass {
						b.Fatalf("benchmark: %d, %v", ret, err)
					}
					total += per * time.Duration(n)
					done += n
					b.StopTimer()
					e.drainSamples(b)
					b.StartTimer()
				}
				b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/op")
				b.StopTimer()
				if err := e.o.Flush(); err != nil {
					b.Fatal(err)
				}
				e.drainSamples(b)
				after := readStatsB(b, e)
				if full := after[record.StatRingFull] - before[record.StatRingFull]; full != 0 {
					b.Fatalf("%d records lost to a full ring: the number would be wrong", full)
				}
			})
		}
	}
}

// liveRepeat is the packets per BPF_PROG_TEST_RUN call in BenchmarkLiveDrain: XDP test runs with
// repeat > 1 swap the XDP dispatcher around the run (~17 ms, INFRA.md), which must be amortized.
const liveRepeat = 1 << 18

// BenchmarkLiveDrain measures records per second end to end, kernel to a user-space reader, with
// both running flat out on different CPUs: a producer thread pinned to CPU 0 runs the program
// with BPF_PROG_TEST_RUN (liveRepeat per syscall), a reader pinned to CPU 1 drains the ring as
// the collector does (deadline polling, threshold wake-ups, every sample walked record by
// record). Default ring (16 MiB) and wake-up threshold. records/s counts records read; lost/op
// is the fraction the ring refused (ring_full). Needs 2 CPUs.
func BenchmarkLiveDrain(b *testing.B) {
	if runtime.NumCPU() < 2 {
		b.Skip("needs 2 CPUs")
	}
	e := newEnv(b, Config{})
	pkts := benchPackets(b, e)
	for _, p := range []benchPacket{pkts[0], pkts[1], pkts[5]} { // SYN, DNS, HTTP GET
		for _, prog := range []struct {
			name string
			p    *ebpf.Program
		}{{"record", e.o.objs.PlXdpRecord}, {"batched", e.o.xdpProg()}} {
			b.Run(p.name+"/"+prog.name, func(b *testing.B) {
				e.drainSamples(b)
				before := readStatsB(b, e)
				start := time.Now()
				prodErr := make(chan error, 1)
				go func() {
					prodErr <- onCPU(0, func() error {
						for done := 0; done < b.N; {
							n := min(liveRepeat, b.N-done)
							if _, _, err := prog.p.Benchmark(p.frame, n, nil); err != nil {
								return err
							}
							done += n
						}
						return nil
					})
				}()
				var read int
				var rec ringbuf.Record
				readErr := onCPU(1, func() error {
					produced := false
					for {
						e.rd.SetDeadline(time.Now().Add(10 * time.Millisecond))
						err := e.rd.ReadInto(&rec)
						if err == nil {
							for s := rec.RawSample; len(s) > 0; {
								n, err := record.SampleLen(s)
								if err != nil {
									return err
								}
								read++
								s = s[n:]
							}
							continue
						}
						if !errors.Is(err, os.ErrDeadlineExceeded) {
							return err
						}
						if !produced {
							select {
							case err := <-prodErr:
								if err != nil {
									return err
								}
								produced = true
								if err := e.o.Flush(); err != nil { // the last part-filled batches
									return err
								}
							default:
							}
							continue
						}
						return nil // producer done, batches flushed, ring empty
					}
				})
				elapsed := time.Since(start)
				if readErr != nil {
					b.Fatal(readErr)
				}
				d := readStatsB(b, e)
				seen := d[record.StatSeen] - before[record.StatSeen]
				emitted := d[record.StatEmitted] - before[record.StatEmitted]
				full := d[record.StatRingFull] - before[record.StatRingFull]
				// seen may exceed b.N a little: a run interrupted by a signal (EINTR) is repeated.
				if seen < uint64(b.N) || emitted+full != seen || uint64(read) != emitted {
					b.Fatalf("%d packets: seen %d, emitted %d, ring_full %d, read %d", b.N, seen, emitted, full, read)
				}
				b.ReportMetric(float64(read)/elapsed.Seconds(), "records/s")
				b.ReportMetric(float64(full)/float64(seen), "lost/op")
			})
		}
	}
}

// onCPU runs fn on a thread pinned to cpu; the thread is discarded afterwards.
func onCPU(cpu int, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the pinned thread dies with the goroutine
		var set unix.CPUSet
		set.Set(cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			done <- err
			return
		}
		done <- fn()
	}()
	return <-done
}

func readStatsB(b *testing.B, e *env) []uint64 {
	s, err := e.o.ReadStats()
	if err != nil {
		b.Fatal(err)
	}
	return s
}
