package bpf

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"github.com/packetlake/packetlake/record"
)

const (
	xdpPass     = 2          // XDP_PASS
	tcActUnspec = ^uint32(0) // TC_ACT_UNSPEC (-1)
)

// env is a loaded object with a reader on its ring; prerequisites missing fail the test.
type env struct {
	o  *Objects
	rd *ringbuf.Reader
}

func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	o, err := Load(cfg)
	if err != nil {
		t.Fatalf("these tests need a kernel with BPF, root (CAP_BPF, CAP_NET_ADMIN): %v", err)
	}
	t.Cleanup(func() { o.Close() })
	rd, err := ringbuf.NewReader(o.Events())
	if err != nil {
		t.Fatalf("ring reader: %v", err)
	}
	t.Cleanup(func() { rd.Close() })
	return &env{o: o, rd: rd}
}

// drainSamples returns every sample now in the ring without waiting: samples are written with
// BPF_RB_NO_WAKEUP, so a deadline already passed polls once and reads what is there.
func (e *env) drainSamples(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	e.rd.SetDeadline(time.Now())
	for {
		rec, err := e.rd.Read()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return out
		}
		if err != nil {
			t.Fatalf("read ring: %v", err)
		}
		out = append(out, rec.RawSample)
	}
}

// drain returns every record now in the ring: a sample holds one or more records back to back,
// walked with record.SampleLen as the collector does; a sample that does not split exactly fails.
func (e *env) drain(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	for _, s := range e.drainSamples(t) {
		recs, err := splitSample(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, recs...)
	}
	return out
}

func splitSample(s []byte) ([][]byte, error) {
	var out [][]byte
	for len(s) > 0 {
		n, err := record.SampleLen(s)
		if err != nil {
			return out, fmt.Errorf("sample with a malformed record after %d good ones: %v", len(out), err)
		}
		out = append(out, s[:n])
		s = s[n:]
	}
	return out, nil
}

// decoded is one record as the user-space decoder sees it.
type decoded struct {
	p   record.Packet
	k   record.Kernel
	raw []byte
}

func decode(t testing.TB, raw []byte) decoded {
	t.Helper()
	var d decoded
	k, err := record.DecodeKernel(raw, &d.p)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	// A record costs the ring exactly its header, the tunnel trailer if and only if the packet
	// was tunnelled, and the snippet it carries.
	want := record.KernelRecordSize + len(k.Snippet)
	if d.p.TunnelDepth != 0 {
		want += record.KernelTunnelSize
	}
	if len(raw) != want {
		t.Fatalf("sample of %d bytes, want %d (header + trailer if tunnel_depth %d + snippet_len)", len(raw), want, d.p.TunnelDepth)
	}
	d.k, d.raw = k, raw
	return d
}

// run puts frame through the XDP program (tc=false) or the TC program with BPF_PROG_TEST_RUN
// and returns its one record.
func (e *env) run(t testing.TB, frame []byte, tc bool) decoded {
	t.Helper()
	var ret, want uint32
	var err error
	if tc {
		ret, err = e.o.testRunTC(frame)
		want = tcActUnspec
	} else {
		ret, err = e.o.TestRun(frame)
		want = xdpPass
	}
	if err != nil {
		t.Fatal(err)
	}
	if ret != want {
		t.Fatalf("program returned %d, want %d: it must never drop", int32(ret), int32(want))
	}
	// TestRun flushes the batch right after the packet's record: one sample, one record.
	recs := e.drainSamples(t)
	if len(recs) != 1 {
		t.Fatalf("%d samples for one frame, want 1", len(recs))
	}
	return decode(t, recs[0])
}

// diffFields names the fields of two packets that differ, with both values.
func diffFields(got, want record.Packet) string {
	var b strings.Builder
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range g.NumField() {
		if !reflect.DeepEqual(g.Field(i).Interface(), w.Field(i).Interface()) {
			b.WriteString("\n\t" + g.Type().Field(i).Name + ": got " + fmtVal(g.Field(i)) + ", want " + fmtVal(w.Field(i)))
		}
	}
	return b.String()
}

func fmtVal(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case [16]byte:
		return fmt.Sprintf("% x", x[:])
	case uint8, uint16, uint32, uint64:
		return fmt.Sprintf("%d (%#x)", x, x)
	}
	return fmt.Sprintf("%q", fmt.Sprint(v.Interface()))
}

// readFlowKeys is ReadFlows summed by key: a flow's totals over its buckets.
func readFlowKeys(t testing.TB, o *Objects) map[FlowKey]FlowCounts {
	t.Helper()
	got := map[FlowKey]FlowCounts{}
	if err := o.ReadFlows(func(f FlowEntry) {
		c := got[f.Key]
		c.Sum(f.Counts)
		got[f.Key] = c
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// clearFlows empties both flow tables the way the exporter does, retire then free (tests, between
// steps: no packet is in flight).
func clearFlows(t testing.TB, o *Objects) {
	t.Helper()
	var ids []FlowID
	if err := o.ReadFlows(func(f FlowEntry) { ids = append(ids, f.ID) }); err != nil {
		t.Fatal(err)
	}
	if err := o.RetireFlows(ids); err != nil {
		t.Fatal(err)
	}
	if err := o.FreeFlows(ids); err != nil {
		t.Fatal(err)
	}
}
