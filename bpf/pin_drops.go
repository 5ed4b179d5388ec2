package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// The drop exporter sends what the counters gained since the last acknowledged export. To stay
// exact across a killed process it keeps that baseline, and the export in flight, beside the
// counters (pinned with them when the program is pinned): two snapshot maps, the baseline and
// the pending export's reading, and a ledger in the set's state saying which is which. An export
// writes its reading into the spare snapshot, then records itself as pending in the ledger (one
// syscall), produces, and once Kafka acknowledged every message flips the baseline to that
// snapshot (one syscall). A process that finds an export pending rebuilds its messages from the
// two snapshots -- the same identity and rows -- and sends them again: the ingester stores one
// message identity once.

const dropsPrefix = "drops_"

// DropLedger is the drop exporter's state. Run and Seq name the messages (record.DropMessage);
// Base is the snapshot holding what acknowledged exports carried; PendingSeq, when not 0, is an
// export cut from snapshot 1-Base, read at PendingNs for collector PendingCollector, that Kafka
// has not acknowledged whole.
type DropLedger struct {
	Run, Seq, Base                          uint64
	PendingSeq, PendingNs, PendingCollector uint64
}

// DropSnapshot is a reading of the counters: per (reason, flow), per unseen reason, and the
// drops that found the map full.
type DropSnapshot struct {
	Seen   map[DropKey]DropCount
	Unseen map[uint32]DropCount
	Failed uint64
}

// NewDropSnapshot is an empty snapshot.
func NewDropSnapshot() DropSnapshot {
	return DropSnapshot{Seen: map[DropKey]DropCount{}, Unseen: map[uint32]DropCount{}}
}

// dropSnapKey keys a snapshot map: Kind 0 a seen key, 1 an unseen reason (Key.Reason), 2 the
// failed count (Packets).
type dropSnapKey struct {
	Kind uint32
	Key  DropKey
}

func dropsIdentity(entries int) [32]byte {
	return extraIdentity(_DropsBytes, fmt.Sprintf("drops entries=%d", entries))
}

// newDropsLedger makes the state and snapshot maps of a freshly loaded program.
func (d *Drops) newLedger(entries int) error {
	var err error
	if d.state, err = newExtraState("pl_drop_state", dropsIdentity(entries)); err != nil {
		return err
	}
	size := d.objs.PlDrops.MaxEntries() + d.objs.PlDropsUnseen.MaxEntries() + 1
	for i := range d.snaps {
		d.snaps[i], err = ebpf.NewMap(&ebpf.MapSpec{Name: fmt.Sprintf("pl_drop_snap%d", i), Type: ebpf.Hash,
			KeySize: uint32(binary.Size(dropSnapKey{})), ValueSize: uint32(binary.Size(DropCount{})), MaxEntries: size,
			Flags: unix.BPF_F_NO_PREALLOC})
		if err != nil {
			return fmt.Errorf("create drop snapshot map: %w", err)
		}
	}
	return nil
}

func (d *Drops) set(dir string) *extraSet {
	return &extraSet{dir: dir, prefix: dropsPrefix, objs: []any{&d.objs.dropsMaps, &d.objs.dropsPrograms}, links: []link.Link{d.link},
		extra: map[string]*ebpf.Map{"snap0": d.snaps[0], "snap1": d.snaps[1]}, state: d.state}
}

// Pin pins the program, its link, maps and ledger in dir (a bpffs, the packet program's pin
// directory): it stays attached and counting when this process ends, and OpenPinnedDrops
// gives it back.
func (d *Drops) Pin(dir string) error {
	if err := d.set(dir).pin(); err != nil {
		return err
	}
	d.pinDir = dir
	return nil
}

// OpenPinnedDrops adopts the drop program pinned in dir when it is what LoadDrops(cfg) would
// load. Otherwise it returns nil and why: "none" (nothing pinned), or a mismatch, whose pins it
// removed (the old program detached; its counts since its last acknowledged export are lost).
func OpenPinnedDrops(dir string, cfg DropsConfig) (*Drops, string, error) {
	cfg = cfg.withDefaults()
	d := &Drops{pinDir: dir}
	s := &extraSet{dir: dir, prefix: dropsPrefix, objs: []any{&d.objs.dropsMaps, &d.objs.dropsPrograms}, extra: map[string]*ebpf.Map{"snap0": nil, "snap1": nil}}
	reason, err := s.open(dropsIdentity(cfg.Entries), 1)
	if err != nil || reason != "" {
		return nil, reason, err
	}
	d.link, d.state, d.snaps = s.links[0], s.state, [2]*ebpf.Map{s.extra["snap0"], s.extra["snap1"]}
	return d, "", nil
}

// RemovePinnedDrops removes a drop program pinned in dir (it detaches), whatever its version.
func RemovePinnedDrops(dir string) error { return removeExtra(dir, dropsPrefix, false) }

// Unpin removes this program's pins (Close then detaches it).
func (d *Drops) Unpin() error {
	if d.pinDir == "" {
		return nil
	}
	err := removeExtra(d.pinDir, dropsPrefix, true)
	d.pinDir = ""
	return err
}

// Detach ends the program for good: unpinned and its link closed, no drop is counted after it
// returns; the maps stay readable until Close.
func (d *Drops) Detach() error {
	err := d.Unpin()
	if d.link != nil {
		err = errors.Join(err, d.link.Close())
		d.link = nil
	}
	return err
}

// Pinned reports whether the program is pinned (Close leaves it attached).
func (d *Drops) Pinned() bool { return d.pinDir != "" }

// Ledger reads the exporter's state.
func (d *Drops) Ledger() (DropLedger, error) {
	b, err := extraBody(d.state)
	if err != nil {
		return DropLedger{}, err
	}
	var l DropLedger
	_, err = binary.Decode(b, binary.LittleEndian, &l)
	return l, err
}

// SetLedger writes the exporter's state in one syscall.
func (d *Drops) SetLedger(l DropLedger) error {
	b, err := binary.Append(nil, binary.LittleEndian, &l)
	if err != nil {
		return err
	}
	return setExtraBody(d.state, b)
}

// WriteSnapshot makes snapshot i hold s: s must hold every key the snapshot holds (a later
// reading of the same counters does).
func (d *Drops) WriteSnapshot(i uint64, s DropSnapshot) error {
	m := d.snaps[i&1]
	var keys []dropSnapKey
	var vals []DropCount
	for k, c := range s.Seen {
		keys, vals = append(keys, dropSnapKey{Kind: 0, Key: k}), append(vals, c)
	}
	for r, c := range s.Unseen {
		keys, vals = append(keys, dropSnapKey{Kind: 1, Key: DropKey{Reason: r}}), append(vals, c)
	}
	keys, vals = append(keys, dropSnapKey{Kind: 2}), append(vals, DropCount{Packets: s.Failed})
	// Overwriting is enough: the spare snapshot holds an older reading, and the program never
	// deletes a key (a full map counts in Failed), so every key it holds is in s too.
	if _, err := m.BatchUpdate(keys, vals, nil); err != nil {
		return fmt.Errorf("write drop snapshot: %w", err)
	}
	return nil
}

// ReadSnapshot reads snapshot i.
func (d *Drops) ReadSnapshot(i uint64) (DropSnapshot, error) {
	s := NewDropSnapshot()
	var k dropSnapKey
	var c DropCount
	it := d.snaps[i&1].Iterate()
	for it.Next(&k, &c) {
		switch k.Kind {
		case 0:
			s.Seen[k.Key] = c
		case 1:
			s.Unseen[k.Key.Reason] = c
		case 2:
			s.Failed = c.Packets
		}
	}
	if err := it.Err(); err != nil {
		return s, fmt.Errorf("read drop snapshot: %w", err)
	}
	return s, nil
}

// Read reads the program's counters now.
func (d *Drops) Read() (DropSnapshot, error) {
	s := NewDropSnapshot()
	if err := d.ReadDrops(func(k DropKey, c DropCount) { s.Seen[k] = c }); err != nil {
		return s, err
	}
	if err := d.ReadUnseen(func(r uint32, c DropCount) { s.Unseen[r] = c }); err != nil {
		return s, err
	}
	st, err := d.ReadStats()
	if err != nil {
		return s, err
	}
	s.Failed = st.Failed
	return s, nil
}
