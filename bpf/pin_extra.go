package bpf

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// The tracing programs beside the packet program (drops.c, receiver.c) are pinned in the same
// pin directory, each set under a prefix of its own, so that they too outlive the collector:
//
//	<prefix>prog_<name>  <prefix>map_<name>  every program and map of the object
//	<prefix>link<i>      the tracepoint links: the programs stay attached while pinned
//	<prefix><extra>      maps the loader makes beside the object's (the drop exporter's ledger)
//	<prefix>state        header (magic, identity) then the owner's bytes; pinned last, so a
//	                     set without it is unfinished and is removed by openExtra
//
// A set is adopted only when its identity (the object's bytes and the settings it was loaded
// with) is what this binary would load; otherwise it is removed and loaded anew.
const (
	extraStateName  = "state"
	extraStateBytes = 256
	extraHdrBytes   = 8 + 32
)

var extraMagic = [8]byte{'P', 'L', 'X', 'P', 'I', 'N', 0, 1}

// extraIdentity fingerprints an object and the settings it is loaded with.
func extraIdentity(object []byte, settings string) [32]byte {
	h := sha256.New()
	h.Write(object)
	h.Write([]byte(settings))
	var id [32]byte
	copy(id[:], h.Sum(nil))
	return id
}

// newExtraState makes the state map of a set: one value, written whole by each Update (a
// process killed mid-write leaves the previous value: the kernel copies it in one syscall).
func newExtraState(name string, id [32]byte) (*ebpf.Map, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: name, Type: ebpf.Array, KeySize: 4, ValueSize: extraStateBytes, MaxEntries: 1})
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	v := make([]byte, extraStateBytes)
	copy(v, extraMagic[:])
	copy(v[8:], id[:])
	if err := m.Update(uint32(0), v, ebpf.UpdateAny); err != nil {
		m.Close()
		return nil, fmt.Errorf("write %s: %w", name, err)
	}
	return m, nil
}

// extraBody returns the owner's bytes of a state map.
func extraBody(state *ebpf.Map) ([]byte, error) {
	v := make([]byte, extraStateBytes)
	if err := state.Lookup(uint32(0), &v); err != nil {
		return nil, fmt.Errorf("read pinned state: %w", err)
	}
	return v[extraHdrBytes:], nil
}

// setExtraBody replaces the owner's bytes of a state map, keeping the header.
func setExtraBody(state *ebpf.Map, body []byte) error {
	v := make([]byte, extraStateBytes)
	if err := state.Lookup(uint32(0), &v); err != nil {
		return fmt.Errorf("read pinned state: %w", err)
	}
	if len(body) > extraStateBytes-extraHdrBytes {
		return errors.New("state body too large")
	}
	copy(v[extraHdrBytes:], body)
	if err := state.Update(uint32(0), v, ebpf.UpdateExist); err != nil {
		return fmt.Errorf("write pinned state: %w", err)
	}
	return nil
}

// extraSet names the parts of one pinned set.
type extraSet struct {
	dir, prefix string
	objs        []any // pointers to a bpf2go object's Maps and Programs structs
	links       []link.Link
	extra       map[string]*ebpf.Map
	state       *ebpf.Map
}

func (s *extraSet) path(name string) string { return filepath.Join(s.dir, s.prefix+name) }

// pin pins the set, state last. On error what was pinned is removed.
func (s *extraSet) pin() (err error) {
	if err := MountBPFFS(s.dir); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			removeExtra(s.dir, s.prefix, false)
		}
	}()
	if err := eachTagged(s.objs, func(name string, m **ebpf.Map, p **ebpf.Program) error {
		if m != nil {
			return (*m).Pin(s.path("map_" + name))
		}
		return (*p).Pin(s.path("prog_" + name))
	}); err != nil {
		return fmt.Errorf("pin %sobjects in %s: %w", s.prefix, s.dir, err)
	}
	for i, l := range s.links {
		if err := l.Pin(s.path(fmt.Sprintf("link%d", i))); err != nil {
			return fmt.Errorf("pin %slink%d in %s: %w", s.prefix, i, s.dir, err)
		}
	}
	for name, m := range s.extra {
		if err := m.Pin(s.path(name)); err != nil {
			return fmt.Errorf("pin %s%s in %s: %w", s.prefix, name, s.dir, err)
		}
	}
	if err := s.state.Pin(s.path(extraStateName)); err != nil {
		return fmt.Errorf("pin %sstate in %s: %w", s.prefix, s.dir, err)
	}
	return nil
}

// open loads the set pinned in s.dir into s (objs, nLinks links, the extra maps named in
// s.extra's keys). It returns "" when it adopted the set, else why not: "none" (nothing pinned,
// or an unfinished pin, removed), or a mismatch (the set is removed: its links detach).
func (s *extraSet) open(id [32]byte, nLinks int) (reason string, err error) {
	if _, err := os.Stat(s.path(extraStateName)); errors.Is(err, os.ErrNotExist) {
		return "none", removeExtra(s.dir, s.prefix, false)
	}
	st, err := ebpf.LoadPinnedMap(s.path(extraStateName), nil)
	if err != nil {
		return "", fmt.Errorf("open pinned %sstate in %s: %w", s.prefix, s.dir, err)
	}
	v := make([]byte, extraStateBytes)
	if st.ValueSize() != extraStateBytes || st.Lookup(uint32(0), &v) != nil || [8]byte(v[:8]) != extraMagic {
		st.Close()
		return "pin_version", removeExtra(s.dir, s.prefix, false)
	}
	if [32]byte(v[8:40]) != id {
		st.Close()
		return "program_or_settings", removeExtra(s.dir, s.prefix, false)
	}
	s.state = st
	fail := func(err error) (string, error) {
		s.close()
		return "", err
	}
	if err := eachTagged(s.objs, func(name string, m **ebpf.Map, p **ebpf.Program) (err error) {
		if m != nil {
			*m, err = ebpf.LoadPinnedMap(s.path("map_"+name), nil)
		} else {
			*p, err = ebpf.LoadPinnedProgram(s.path("prog_"+name), nil)
		}
		return err
	}); err != nil {
		return fail(fmt.Errorf("open pinned %sobjects in %s: %w", s.prefix, s.dir, err))
	}
	for name := range s.extra {
		m, err := ebpf.LoadPinnedMap(s.path(name), nil)
		if err != nil {
			return fail(fmt.Errorf("open pinned %s%s in %s: %w", s.prefix, name, s.dir, err))
		}
		s.extra[name] = m
	}
	for i := range nLinks {
		l, err := link.LoadPinnedLink(s.path(fmt.Sprintf("link%d", i)), nil)
		if err != nil {
			return fail(fmt.Errorf("open pinned %slink%d in %s: %w", s.prefix, i, s.dir, err))
		}
		s.links = append(s.links, l)
	}
	return "", nil
}

// close releases this process's handles (the pins stay).
func (s *extraSet) close() {
	for _, l := range s.links {
		l.Close()
	}
	s.links = nil
	_ = eachTagged(s.objs, func(_ string, m **ebpf.Map, p **ebpf.Program) error {
		if m != nil && *m != nil {
			(*m).Close()
		}
		if p != nil && *p != nil {
			(*p).Close()
		}
		return nil
	})
	for _, m := range s.extra {
		if m != nil {
			m.Close()
		}
	}
	if s.state != nil {
		s.state.Close()
	}
}

// removeExtra unpins every file of a set (by its prefix only) and, with rmdir, removes dir if
// that empties it (the run's end; not while a collector may be about to pin there). Tracing
// links are released once unpinned and closed: their programs stop.
func removeExtra(dir, prefix string, rmdir bool) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read pin directory: %w", err)
	}
	var errs []error
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				errs = append(errs, fmt.Errorf("unpin %s: %w", e.Name(), err))
			}
		}
	}
	if !rmdir {
		return errors.Join(errs...)
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.ENOTEMPTY) {
		errs = append(errs, fmt.Errorf("remove pin directory: %w", err))
	}
	return errors.Join(errs...)
}

// eachTagged calls fn with every *ebpf.Map and *ebpf.Program field (tagged `ebpf:"name"`) of
// bpf2go Maps and Programs structs.
func eachTagged(groups []any, fn func(name string, m **ebpf.Map, p **ebpf.Program) error) error {
	for _, g := range groups {
		v := reflect.ValueOf(g).Elem()
		for i := range v.NumField() {
			name := v.Type().Field(i).Tag.Get("ebpf")
			switch x := v.Field(i).Addr().Interface().(type) {
			case **ebpf.Map:
				if err := fn(name, x, nil); err != nil {
					return err
				}
			case **ebpf.Program:
				if err := fn(name, nil, x); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
