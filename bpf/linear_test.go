package bpf

import (
	"bytes"
	"os/exec"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/packetlake/packetlake/internal/testkit/nettest"
)

// linearMax is the largest frame BPF_PROG_TEST_RUN gives a program without frags support in one
// buffer (a page less XDP headroom and struct skb_shared_info); larger ones need pl_xdp.
const linearMax = 3520

// TestXDPLinearSameRecords: pl_xdp_linear (frame length from the linear buffer) must write the
// very bytes pl_xdp (bpf_xdp_get_buff_len) writes, but the timestamp, for every frame of the
// shared captures that fits one buffer, every hand-built frame and every cut of them.
func TestXDPLinearSameRecords(t *testing.T) {
	e := newEnv(t, Config{})
	var frames [][]byte
	captures, _ := captureFrames(t)
	for _, f := range captures {
		frames = append(frames, f.data)
	}
	for _, c := range parseCases() {
		for cut := 14; cut <= len(c.frame); cut++ {
			frames = append(frames, c.frame[:cut])
		}
	}
	compared, skipped := 0, 0
	for _, f := range frames {
		if len(f) > linearMax {
			skipped++
			continue
		}
		want := e.run(t, f, false)
		got := e.runProg(t, e.o.objs.PlXdpLinear, f)
		if !bytes.Equal(got.raw[8:], want.raw[8:]) {
			t.Fatalf("frame of %d bytes: pl_xdp_linear's record differs from pl_xdp's:%s\n linear % x\n frags  % x",
				len(f), diffFields(got.p, want.p), got.raw[8:], want.raw[8:])
		}
		compared++
	}
	if compared < len(captures)-10 {
		t.Errorf("only %d frames compared: the comparison lost its coverage", compared)
	}
	t.Logf("%d frames compared (%d larger than one buffer skipped)", compared, skipped)
}

// runProg is run through the XDP program p.
func (e *env) runProg(t testing.TB, p *ebpf.Program, frame []byte) decoded {
	t.Helper()
	ret, err := e.o.testRunXDP(p, frame)
	if err != nil {
		t.Fatal(err)
	}
	if ret != xdpPass {
		t.Fatalf("program returned %d, want %d", ret, xdpPass)
	}
	recs := e.drainSamples(t)
	if len(recs) != 1 {
		t.Fatalf("%d samples for one frame, want 1", len(recs))
	}
	return decode(t, recs[0])
}

// TestAttachXDPChoosesProgram: on an ordinary MTU AttachXDP attaches pl_xdp_linear, natively and
// generically; natively on a veth whose MTU does not fit one buffer the kernel refuses it and
// AttachXDP falls back to the frags-aware pl_xdp (TestLiveReplay then checks its records).
func TestAttachXDPChoosesProgram(t *testing.T) {
	e := newEnv(t, Config{})
	id := func(p *ebpf.Program) ebpf.ProgramID {
		info, err := p.Info()
		if err != nil {
			t.Fatal(err)
		}
		i, _ := info.ID()
		return i
	}
	linear, frags := id(e.o.objs.PlXdpLinear), id(e.o.objs.PlXdp)
	for _, c := range []struct {
		mtu  int
		mode XDPMode
		want ebpf.ProgramID
	}{{1500, XDPNative, linear}, {1500, XDPGeneric, linear}, {1500, XDPAuto, linear}, {9000, XDPNative, frags}, {9000, XDPGeneric, linear}} {
		v := nettest.NewVethPair(t, nettest.WithMTU(c.mtu))
		var l link.Link
		if err := v.Do(func() (err error) { l, err = e.o.AttachXDP(v.Index, c.mode); return err }); err != nil {
			t.Fatalf("MTU %d, %s: %v", c.mtu, c.mode, err)
		}
		info, err := l.Info()
		name := e.o.XDPProgram(l)
		l.Close()
		if err != nil {
			t.Fatal(err)
		}
		if info.Program != c.want {
			t.Errorf("MTU %d, %s: program %d attached, want %d (pl_xdp_linear %d, pl_xdp %d)", c.mtu, c.mode, info.Program, c.want, linear, frags)
		}
		if wantName := map[ebpf.ProgramID]string{linear: "pl_xdp_linear", frags: "pl_xdp"}[c.want]; name != wantName {
			t.Errorf("MTU %d, %s: XDPProgram says %q, want %q", c.mtu, c.mode, name, wantName)
		}
	}

	// Under pl_xdp_linear the kernel keeps frames within one buffer: on a veth, the peer's MTU
	// (what the attached end receives) cannot go past it (what XDPFrags is for)...
	v0 := nettest.NewVethPair(t)
	var l0 link.Link
	if err := v0.Do(func() (err error) { l0, err = e.o.AttachXDP(v0.Index, XDPNative); return err }); err != nil {
		t.Fatal(err)
	}
	defer l0.Close()
	if out, err := exec.Command("ip", "-n", v0.PeerNS, "link", "set", v0.PeerName, "mtu", "9000").CombinedOutput(); err == nil {
		t.Errorf("the peer's MTU went to 9000 under pl_xdp_linear: frames past one buffer would reach it (%s)", out)
	}

	// ...with XDPFrags, pl_xdp whatever the MTU, and the MTU can then go past one buffer.
	f := newEnv(t, Config{XDPFrags: true})
	v := nettest.NewVethPair(t)
	var l link.Link
	if err := v.Do(func() (err error) { l, err = f.o.AttachXDP(v.Index, XDPNative); return err }); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if name := f.o.XDPProgram(l); name != "pl_xdp" {
		t.Errorf("XDPFrags at MTU 1500: %q attached, want pl_xdp", name)
	}
	if out, err := exec.Command("ip", "-n", v.PeerNS, "link", "set", v.PeerName, "mtu", "9000").CombinedOutput(); err != nil {
		t.Errorf("raising the peer's MTU under pl_xdp: %v: %s", err, out)
	}
}
