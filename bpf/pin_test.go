package bpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf/link"

	"github.com/packetlake/packetlake/internal/testkit/nettest"
)

// A pinned program outlives its objects' handles: it stays attached, OpenPinned gets it back
// with the same ring and counters, Mismatch tells what may be adopted, and Remove detaches it
// and leaves no pin and no directory.
func TestPinAdoptRemove(t *testing.T) {
	for _, hook := range []string{"xdp", "tc"} {
		t.Run(hook, func(t *testing.T) { pinAdoptRemove(t, hook) })
	}
}

func pinAdoptRemove(t *testing.T, hook string) {
	v := nettest.NewVethPair(t)
	dir := testPinDir(t)
	cfg := Config{RingBytes: 1 << 20}
	att := Attachment{Hook: hook, XDPMode: XDPGeneric, Ifindex: v.Index}
	o, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var l link.Link
	if err := v.Do(func() (err error) {
		if hook == "tc" {
			l, err = o.AttachTC(v.Index)
		} else {
			l, err = o.AttachXDP(v.Index, XDPGeneric)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	p, err := o.Pin(dir, l, cfg, att)
	if err != nil {
		t.Fatal(err)
	}
	p.Run[0] = 42 // the caller's state survives with the pin
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}

	// The handles are gone; the program still records.
	nettest.Replay(t, v.PeerNS, v.PeerName, filepath.Join(pcapDir, "tcpdump/dns_udp.pcap"), 1000)
	q, err := OpenPinned(dir)
	if err != nil || q == nil {
		t.Fatalf("OpenPinned: %v, %v", q, err)
	}
	defer q.Close()
	if reason, detail := q.Mismatch(cfg, att); reason != "" {
		t.Fatalf("the same binary and settings may not adopt: %s (%s)", reason, detail)
	}
	if q.Run[0] != 42 {
		t.Errorf("run page lost its contents: %d", q.Run[0])
	}
	if err := q.Objs.Flush(); err != nil {
		t.Fatal(err)
	}
	st, err := q.Objs.ReadStats()
	if err != nil || st[0] == 0 {
		t.Errorf("pinned counters after the replay: seen %v (%v), want the packets sent", st, err)
	}
	rd, err := NewRing(q.Objs.Events())
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if rd.AvailableBytes() == 0 {
		t.Error("the pinned ring holds nothing of what arrived while no process held it")
	}
	for _, c := range []struct {
		cfg    Config
		att    Attachment
		reason string
	}{
		{Config{RingBytes: 2 << 20}, att, "settings"},
		{cfg, Attachment{Hook: map[string]string{"xdp": "tc", "tc": "xdp"}[hook], XDPMode: XDPGeneric, Ifindex: v.Index}, "settings"},
		{cfg, Attachment{Hook: hook, XDPMode: XDPGeneric, Ifindex: v.Index + 100}, "detached"},
	} {
		if reason, _ := q.Mismatch(c.cfg, c.att); reason != c.reason {
			t.Errorf("Mismatch(%+v, %+v) = %q, want %q", c.cfg, c.att, reason, c.reason)
		}
	}

	if err := q.Remove(); err != nil {
		t.Fatal(err)
	}
	if out := nettest.MustExec(t, v.NS, "bpftool", "net", "show", "dev", v.Name); strings.Contains(string(out), "pl_") {
		t.Errorf("still attached after Remove:\n%s", out)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin directory left after Remove: %v", err)
	}
	if p, err := OpenPinned(dir); p != nil || err != nil {
		t.Errorf("OpenPinned after Remove: %v, %v; want nothing", p, err)
	}
}

// An unfinished pin (no run page: the process died while pinning) is cleared, detaching its link;
// files that are not packetlake's pins are never touched.
func TestOpenPinnedClearsUnfinished(t *testing.T) {
	v := nettest.NewVethPair(t)
	dir := testPinDir(t)
	o, err := Load(Config{RingBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	var l link.Link
	if err := v.Do(func() (err error) { l, err = o.AttachXDP(v.Index, XDPGeneric); return err }); err != nil {
		t.Fatal(err)
	}
	if err := MountBPFFS(dir); err != nil {
		t.Fatal(err)
	}
	if err := l.Pin(filepath.Join(dir, pinLinkName)); err != nil {
		t.Fatal(err)
	}
	if err := o.objs.PlStats.Pin(filepath.Join(dir, "not_ours")); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if p, err := OpenPinned(dir); p != nil || err != nil {
		t.Fatalf("OpenPinned of an unfinished pin: %v, %v; want nothing", p, err)
	}
	if out := nettest.MustExec(t, v.NS, "bpftool", "net", "show", "dev", v.Name); strings.Contains(string(out), "pl_xdp") {
		t.Errorf("the unfinished pin's link is still attached:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "not_ours")); err != nil {
		t.Errorf("a pin that is not packetlake's was removed: %v", err)
	}
}

// testPinDir is a pin directory for one test, cleared at its end (which detaches what is left).
func testPinDir(t *testing.T) string {
	dir := filepath.Join(BPFFSRoot, "packetlake-test", fmt.Sprintf("bpf-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "_")))
	t.Cleanup(func() {
		removePins(dir, true)
		os.Remove(filepath.Join(dir, "not_ours"))
		os.Remove(dir)
		os.Remove(filepath.Dir(dir)) // the shared parent, once no test uses it (fails while one does)
	})
	return dir
}
