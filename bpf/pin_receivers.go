package bpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
)

// The receiver tracer is pinned like the drop program (pin_extra.go), under "recv_": its map of
// who read each socket outlives the collector, and the tracer keeps recording while no collector
// runs, so a server that read before a restart is still named after it without reading again.

const receiversPrefix = "recv_"

func receiversIdentity(entries int) [32]byte {
	return extraIdentity(_ReceiverBytes, fmt.Sprintf("receivers entries=%d", entries))
}

func receiverEntries(entries int) int {
	if entries <= 0 {
		return DefaultReceiverEntries
	}
	return entries
}

// Pin pins the attached tracer (programs, links, maps) in dir, the packet program's pin
// directory, for a tracer loaded with LoadReceivers(entries).
func (r *Receivers) Pin(dir string, entries int) error {
	if len(r.links) != 2 {
		return fmt.Errorf("pin receiver tracer: %d links attached, want 2", len(r.links))
	}
	st, err := newExtraState("pl_recv_state", receiversIdentity(receiverEntries(entries)))
	if err != nil {
		return err
	}
	defer st.Close() // the pin holds it
	if err := (&extraSet{dir: dir, prefix: receiversPrefix, objs: []any{&r.objs.receiverMaps, &r.objs.receiverPrograms}, links: r.links, state: st}).pin(); err != nil {
		return err
	}
	r.pinDir = dir
	return nil
}

// OpenPinnedReceivers adopts the tracer pinned in dir when it is what LoadReceivers(entries)
// would load. Otherwise it returns nil and why: "none" (nothing pinned), or a mismatch, whose
// pins it removed (the old tracer detached, its map gone).
func OpenPinnedReceivers(dir string, entries int) (*Receivers, string, error) {
	r := &Receivers{pinDir: dir}
	s := &extraSet{dir: dir, prefix: receiversPrefix, objs: []any{&r.objs.receiverMaps, &r.objs.receiverPrograms}, extra: map[string]*ebpf.Map{}}
	reason, err := s.open(receiversIdentity(receiverEntries(entries)), 2)
	if err != nil || reason != "" {
		return nil, reason, err
	}
	s.state.Close()
	r.links = s.links
	return r, "", nil
}

// RemovePinnedReceivers removes a tracer pinned in dir (it detaches), whatever its version.
func RemovePinnedReceivers(dir string) error { return removeExtra(dir, receiversPrefix, false) }

// RemovePinnedTracing removes the drop program and the receiver tracer pinned in dir, and dir
// if that empties it: what `collect --detach` leaves when no packet program is pinned there.
func RemovePinnedTracing(dir string) error {
	return errors.Join(removeExtra(dir, dropsPrefix, false), removeExtra(dir, receiversPrefix, true))
}

// Unpin removes this tracer's pins (Close then detaches it).
func (r *Receivers) Unpin() error {
	if r.pinDir == "" {
		return nil
	}
	err := removeExtra(r.pinDir, receiversPrefix, true)
	r.pinDir = ""
	return err
}

// Pinned reports whether the tracer is pinned (Close leaves it attached).
func (r *Receivers) Pinned() bool { return r.pinDir != "" }
