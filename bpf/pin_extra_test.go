package bpf

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/packetlake/packetlake/internal/testkit/nettest"
)

// extraPins lists the files of a set pinned in dir.
func extraPins(dir, prefix string) []string {
	var out []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

// waitProgGone waits until the kernel has freed program id (released links free their program
// after an RCU grace period), up to 10 s.
func waitProgGone(t *testing.T, id ebpf.ProgramID) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		p, err := ebpf.NewProgramFromID(id)
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		if err == nil {
			p.Close()
		}
	}
	t.Fatalf("program %d still exists: its pins did not release it", id)
}

// A pinned drop program outlives every handle of the process that loaded it: it goes on
// counting while nothing holds it (the kernel's drops between two collectors), and
// OpenPinnedDrops gives back the same counters, snapshots and ledger. A program loaded with
// other settings is not adopted: its pins are removed and it is freed.
func TestPinExtrasDropsSurviveClose(t *testing.T) {
	de := newDropEnv(t)
	dir := testPinDir(t)
	t.Cleanup(func() { RemovePinnedDrops(dir); RemovePinnedReceivers(dir) })
	if err := de.d.Pin(dir); err != nil {
		t.Fatal(err)
	}
	const frame = 14 + 20 + 8
	flow := dropFlow{"NO_SOCKET", 42100, 7100}
	nettest.SendUDP(t, de.v, 42100, 7100, 10, 100, false)
	if got := de.waitDrops(t, map[dropFlow]DropCount{flow: {Packets: 10}}); got[flow] != (DropCount{10, 10 * (frame + 100)}) {
		t.Fatalf("before the restart: %+v, want 10 drops", got[flow])
	}
	snap, err := de.d.Read()
	if err != nil {
		t.Fatal(err)
	}
	if err := de.d.WriteSnapshot(1, snap); err != nil {
		t.Fatal(err)
	}
	ledger := DropLedger{Run: 7, Seq: 3, Base: 0, PendingSeq: 3, PendingNs: 12345, PendingCollector: 99}
	if err := de.d.SetLedger(ledger); err != nil {
		t.Fatal(err)
	}
	info, err := de.d.objs.PlKfreeSkb.Info()
	if err != nil {
		t.Fatal(err)
	}
	progID, _ := info.ID()
	de.d.Close() // as a killed process: every handle gone

	nettest.SendUDP(t, de.v, 42100, 7100, 15, 100, false) // while nobody holds the program

	d, reason, err := OpenPinnedDrops(dir, DropsConfig{})
	if err != nil || d == nil {
		t.Fatalf("OpenPinnedDrops: %v (%q)", err, reason)
	}
	de.d = d
	if got := de.waitDrops(t, map[dropFlow]DropCount{flow: {Packets: 25}}); got[flow] != (DropCount{25, 25 * (frame + 100)}) {
		t.Fatalf("adopted: %+v, want the 10 drops before and the 15 while unheld", got[flow])
	}
	if l, err := d.Ledger(); err != nil || l != ledger {
		t.Errorf("adopted ledger %+v (%v), want %+v", l, err, ledger)
	}
	s1, err := d.ReadSnapshot(1)
	if err != nil || len(s1.Seen) != len(snap.Seen) || s1.Failed != snap.Failed {
		t.Fatalf("adopted snapshot %+v (%v), want %+v", s1, err, snap)
	}
	for k, c := range snap.Seen {
		if s1.Seen[k] != c {
			t.Errorf("snapshot %+v: %+v, want %+v", k, s1.Seen[k], c)
		}
	}
	d.Close()

	// Other settings: not adopted, removed, freed.
	if d, reason, err := OpenPinnedDrops(dir, DropsConfig{Entries: 100}); err != nil || d != nil || reason != "program_or_settings" {
		t.Fatalf("OpenPinnedDrops with other entries: %v, %q, %v; want nil, program_or_settings", d, reason, err)
	}
	if p := extraPins(dir, dropsPrefix); len(p) != 0 {
		t.Errorf("pins left after a mismatch: %v", p)
	}
	waitProgGone(t, progID)
	if d, reason, err := OpenPinnedDrops(dir, DropsConfig{}); err != nil || d != nil || reason != "none" {
		t.Fatalf("OpenPinnedDrops on nothing: %v, %q, %v", d, reason, err)
	}
}

// A pinned receiver tracer keeps its map and keeps recording while no process holds it: a
// socket read before the handles were closed is still there after OpenPinnedReceivers, and one
// read while nothing held the tracer is recorded too. Unpin then Close frees it.
func TestPinExtrasReceiversSurviveClose(t *testing.T) {
	dir := testPinDir(t)
	t.Cleanup(func() { RemovePinnedDrops(dir); RemovePinnedReceivers(dir) })
	r, err := LoadReceivers(0)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Pin(dir, 0); err != nil {
		r.Close()
		t.Fatal(err)
	}
	info, err := r.objs.PlRecv.Info()
	if err != nil {
		t.Fatal(err)
	}
	progID, _ := info.ID()
	v := nettest.NewVethPair(t)
	// readOnce binds a UDP socket on port in the observed namespace, has the peer send it one
	// datagram and reads it: the tracer records this process as its reader.
	readOnce := func(port uint16) RecvKey {
		t.Helper()
		var ns uint32
		err := v.Do(func() error {
			var err error
			if ns, err = CurrentNetns(); err != nil {
				return err
			}
			u, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(v.Addr, port)))
			if err != nil {
				return err
			}
			defer u.Close()
			if err := nettest.Do(v.PeerNS, func() error {
				c, err := net.Dial("udp4", netip.AddrPortFrom(v.Addr, port).String())
				if err != nil {
					return err
				}
				defer c.Close()
				_, err = c.Write([]byte("hi"))
				return err
			}); err != nil {
				return err
			}
			u.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = u.Read(make([]byte, 16))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return NewRecvKey(ns, 17, netip.AddrPort{}, netip.AddrPortFrom(v.Addr, port))
	}
	find := func(r *Receivers, k RecvKey) (Receiver, bool) {
		var got Receiver
		found := false
		if err := r.Read(func(kk RecvKey, rv Receiver) {
			if kk == k {
				got, found = rv, true
			}
		}); err != nil {
			t.Fatal(err)
		}
		return got, found
	}
	before := readOnce(7201)
	if rv, ok := find(r, before); !ok || rv.PID != uint32(os.Getpid()) {
		t.Fatalf("before the restart: %+v %v, want this process", rv, ok)
	}
	r.Close() // every handle gone
	during := readOnce(7202)

	a, reason, err := OpenPinnedReceivers(dir, 0)
	if err != nil || a == nil {
		t.Fatalf("OpenPinnedReceivers: %v (%q)", err, reason)
	}
	for _, k := range []RecvKey{before, during} {
		if rv, ok := find(a, k); !ok || rv.PID != uint32(os.Getpid()) {
			t.Errorf("adopted tracer, socket %d: %+v %v, want this process", k.LocalPort, rv, ok)
		}
	}
	if err := a.Unpin(); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if p := extraPins(dir, receiversPrefix); len(p) != 0 {
		t.Errorf("pins left after Unpin: %v", p)
	}
	if _, err := os.Stat(filepath.Join(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin directory left after the last set was unpinned: %v", err)
	}
	waitProgGone(t, progID)
}
