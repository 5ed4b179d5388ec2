package bpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// A pin directory (bpffs) holds one run of the program on one interface, so that it outlives
// the collector process: a crash, an OOM kill or an upgrade no longer detaches the program, and
// the next collector adopts it, ring buffer, counters, flow tables and all.
//
//	prog_<name>    every program of the object
//	map_<name>     every map of the object (the ring buffer, pl_stats, the flow tables, ...)
//	link           the XDP or tcx link: the program stays attached while it is pinned
//	flow_exported  the flow exporter's baseline: what acknowledged exports carried per bucket
//	run            the run page: pinHeader, then RunBytes the caller keeps its state in
//
// run is pinned last, so a directory without it is an unfinished pin (the process died while
// pinning) that OpenPinned clears.
const (
	pinRunName      = "run"
	pinLinkName     = "link"
	pinBaselineName = "flow_exported"
	pinProgPrefix   = "prog_"
	pinMapPrefix    = "map_"

	runPageBytes   = 4096
	runHeaderBytes = 512
	// RunBytes is the size of Pinned.Run.
	RunBytes = runPageBytes - runHeaderBytes

	pinVersion = 1
)

var pinMagic = [8]byte{'P', 'L', 'P', 'I', 'N', 0, 0, pinVersion}

// pinHeader opens the run page. Its fields are only ever added (before runHeaderBytes), so any
// later binary can read what an earlier one pinned: enough to replace the pin cleanly.
type pinHeader struct {
	Magic      [8]byte
	Hook       [8]byte // "xdp", "tc"
	Ifindex    uint32
	XDPMode    uint32
	StatSlots  uint32                  // entries of pl_stats
	StatIdx    [nPinnedCounters]uint32 // pl_stats index of each of pinnedCounters
	BatchAgeNs uint64
	FlushKey   uint64
	Identity   Identity
	PinnedNs   int64 // wall clock when pinned
}

func init() {
	if unsafe.Sizeof(pinHeader{}) > runHeaderBytes || len(pinnedCounters) != nPinnedCounters {
		panic("bpf: pinHeader outgrew its place in the run page")
	}
}

// Pinned is a run held in a pin directory: the objects, the link and the run page.
type Pinned struct {
	Dir  string
	Objs *Objects
	Link link.Link
	// Run is the caller's part of the pinned run page (RunBytes, zero when first pinned), mapped
	// into this process: plain and atomic stores to it survive the process. It stays mapped
	// until the process exits, even after Close (a late writer must not fault).
	Run []byte

	hdr     *pinHeader
	pageMap *ebpf.Map
}

// Pin pins o, its attached link l and a new run page into dir (created, on a bpffs; see
// MountBPFFS). cfg and att are what o was loaded and attached with: the pin records them for
// Mismatch.
func (o *Objects) Pin(dir string, l link.Link, cfg Config, att Attachment) (_ *Pinned, err error) {
	id, err := cfg.Identity(att)
	if err != nil {
		return nil, err
	}
	if err := MountBPFFS(dir); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			removePins(dir, false)
		}
	}()
	if err := eachObject(&o.objs, func(name string, m **ebpf.Map, p **ebpf.Program) error {
		if m != nil {
			return (*m).Pin(filepath.Join(dir, pinMapPrefix+name))
		}
		return (*p).Pin(filepath.Join(dir, pinProgPrefix+name))
	}); err != nil {
		return nil, fmt.Errorf("pin objects in %s: %w", dir, err)
	}
	if o.baseline, err = newBaselineMap(o); err != nil {
		return nil, err
	}
	if err := o.baseline.Pin(filepath.Join(dir, pinBaselineName)); err != nil {
		return nil, fmt.Errorf("pin %s in %s: %w", pinBaselineName, dir, err)
	}
	if err := l.Pin(filepath.Join(dir, pinLinkName)); err != nil {
		return nil, fmt.Errorf("pin link in %s: %w", dir, err)
	}
	pageMap, err := ebpf.NewMap(&ebpf.MapSpec{Name: "pl_run", Type: ebpf.Array, KeySize: 4, ValueSize: runPageBytes,
		MaxEntries: 1, Flags: unix.BPF_F_MMAPABLE})
	if err != nil {
		return nil, fmt.Errorf("create run page: %w", err)
	}
	p, err := mapRunPage(dir, o, l, pageMap)
	if err != nil {
		pageMap.Close()
		return nil, err
	}
	h := p.hdr
	copy(h.Hook[:], att.Hook)
	h.Ifindex, h.XDPMode = uint32(att.Ifindex), uint32(att.XDPMode)
	h.StatSlots = o.objs.PlStats.MaxEntries()
	for i, name := range pinnedCounters {
		h.StatIdx[i] = counterIndex(name)
	}
	h.BatchAgeNs, h.FlushKey = uint64(o.age.Nanoseconds()), o.flushKey
	h.Identity, h.PinnedNs = id, time.Now().UnixNano()
	h.Magic = pinMagic // last: a page with the magic is a whole header
	if err := pageMap.Pin(filepath.Join(dir, pinRunName)); err != nil {
		return nil, fmt.Errorf("pin run page in %s: %w", dir, err)
	}
	return p, nil
}

// OpenPinned opens the run pinned in dir. It returns nil, nil when dir holds no run: missing,
// empty, or an unfinished pin, whose objects it removes (detaching a pinned link).
func OpenPinned(dir string) (_ *Pinned, err error) {
	if _, err := os.Stat(filepath.Join(dir, pinRunName)); errors.Is(err, os.ErrNotExist) {
		return nil, removePins(dir, false)
	}
	pageMap, err := ebpf.LoadPinnedMap(filepath.Join(dir, pinRunName), nil)
	if err != nil {
		return nil, fmt.Errorf("open pinned run page in %s: %w", dir, err)
	}
	if pageMap.Type() != ebpf.Array || pageMap.ValueSize() != runPageBytes || pageMap.Flags()&unix.BPF_F_MMAPABLE == 0 {
		pageMap.Close()
		return nil, fmt.Errorf("%s/%s is not a packetlake run page (remove %s by hand if it is not packetlake's)", dir, pinRunName, dir)
	}
	o := &Objects{}
	defer func() {
		if err != nil {
			o.Close()
		}
	}()
	// Objects a binary of another version did not pin stay nil: Mismatch refuses such a pin.
	if err := eachObject(&o.objs, func(name string, m **ebpf.Map, p **ebpf.Program) error {
		var err error
		if m != nil {
			*m, err = ebpf.LoadPinnedMap(filepath.Join(dir, pinMapPrefix+name), nil)
		} else {
			*p, err = ebpf.LoadPinnedProgram(filepath.Join(dir, pinProgPrefix+name), nil)
		}
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}); err != nil {
		return nil, fmt.Errorf("open pinned objects in %s: %w", dir, err)
	}
	if o.baseline, err = ebpf.LoadPinnedMap(filepath.Join(dir, pinBaselineName), nil); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open pinned %s in %s: %w", pinBaselineName, dir, err)
	}
	l, err := link.LoadPinnedLink(filepath.Join(dir, pinLinkName), nil)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open pinned link in %s: %w", dir, err)
	}
	p, err := mapRunPage(dir, o, l, pageMap)
	if err != nil {
		if l != nil {
			l.Close()
		}
		pageMap.Close()
		return nil, err
	}
	o.age, o.flushKey = time.Duration(p.hdr.BatchAgeNs), p.hdr.FlushKey
	if p.hdr.Magic == pinMagic && o.objs.PlFlows != nil && o.objs.PlFlows4 != nil {
		if err := o.mapFlows(); err != nil {
			o.unmapFlows() // a layout this binary cannot map: Mismatch says so, ReadFlows fails
		}
	} else {
		o.flows.closed = true
	}
	return p, nil
}

func mapRunPage(dir string, o *Objects, l link.Link, pageMap *ebpf.Map) (*Pinned, error) {
	page, err := unix.Mmap(pageMap.FD(), 0, runPageBytes, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map run page of %s: %w", dir, err)
	}
	return &Pinned{Dir: dir, Objs: o, Link: l, Run: page[runHeaderBytes:], hdr: (*pinHeader)(unsafe.Pointer(&page[0])),
		pageMap: pageMap}, nil
}

// Mismatch says why this binary, loading with cfg and attaching with att, must not adopt the
// pin: "" when it may. reason is a short label (for a metric): "pin_version", "record_layout",
// "program", "settings", "detached"; detail says more for the log.
func (p *Pinned) Mismatch(cfg Config, att Attachment) (reason, detail string) {
	h := p.hdr
	if h.Magic != pinMagic {
		return "pin_version", fmt.Sprintf("run page magic %q, this binary writes %q", h.Magic[:], pinMagic[:])
	}
	want, err := cfg.Identity(att)
	if err != nil {
		return "settings", err.Error()
	}
	switch {
	case h.Identity.Layout != want.Layout:
		return "record_layout", "the pinned program writes another struct pl_record layout than this binary reads"
	case h.Identity.Object != want.Object:
		return "program", "the pinned program is another build of the BPF object than this binary embeds"
	case h.Identity.Settings != want.Settings:
		return "settings", "the pinned program was loaded or attached with other settings (ring, batches, flows, sampling, hook, XDP mode)"
	}
	if err := eachObject(&p.Objs.objs, func(name string, m **ebpf.Map, prog **ebpf.Program) error {
		if (m != nil && *m == nil) || (prog != nil && *prog == nil) {
			return fmt.Errorf("%s is not pinned", name)
		}
		return nil
	}); err != nil || p.Objs.baseline == nil || p.Objs.flows.closed {
		return "pin_version", fmt.Sprintf("the pin is incomplete (%v)", err)
	}
	if p.Link == nil {
		return "detached", "no link is pinned"
	}
	li, err := p.Link.Info()
	if err != nil {
		return "detached", fmt.Sprintf("link info: %v", err)
	}
	ifindex := uint32(0)
	if x := li.XDP(); x != nil {
		ifindex = x.Ifindex
	} else if t := li.TCX(); t != nil {
		ifindex = t.Ifindex
	}
	if ifindex == 0 || int(ifindex) != att.Ifindex {
		// 0: the interface was deleted (the link is defunct); another index: deleted and made again.
		return "detached", fmt.Sprintf("the pinned link is attached to ifindex %d, the interface is %d now", ifindex, att.Ifindex)
	}
	return "", ""
}

// KernelCounters reads the pinned program's kernel counters by the indices its pin recorded
// (a replaced program may have another layout than this binary's): seen, emitted, ring_full,
// sampled_out, flow_counted and flow_failed, summed over CPUs.
func (p *Pinned) KernelCounters() (map[string]uint64, error) {
	m := p.Objs.objs.PlStats
	if m == nil || p.hdr.Magic != pinMagic || m.MaxEntries() != p.hdr.StatSlots {
		return nil, errors.New("the pinned counters cannot be read: pl_stats is missing or of another size than pinned")
	}
	out := map[string]uint64{}
	var perCPU []uint64
	for i, name := range pinnedCounters {
		if err := m.Lookup(p.hdr.StatIdx[i], &perCPU); err != nil {
			return nil, fmt.Errorf("read pinned pl_stats[%d]: %w", p.hdr.StatIdx[i], err)
		}
		for _, v := range perCPU {
			out[name] += v
		}
	}
	return out, nil
}

// Detach detaches the pinned link for good (unpinned, then closed): no packet reaches the
// program afterwards. The other pins stay until Remove.
func (p *Pinned) Detach() error {
	if p.Link == nil {
		return nil
	}
	var errs []error
	if err := p.Link.Detach(); err != nil && !errors.Is(err, ebpf.ErrNotSupported) {
		errs = append(errs, fmt.Errorf("detach link: %w", err))
	}
	if err := p.Link.Unpin(); err != nil {
		errs = append(errs, fmt.Errorf("unpin link: %w", err))
	}
	if err := p.Link.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close link: %w", err))
	}
	p.Link = nil
	return errors.Join(errs...)
}

// Remove ends the run: it detaches the link, removes every pin and the directory if it is then
// empty, and closes what this process holds. The kernel frees the objects once nothing holds them.
func (p *Pinned) Remove() error {
	errs := []error{p.Detach()}
	errs = append(errs, removePins(p.Dir, true), p.Close())
	return errors.Join(errs...)
}

// Close releases this process's handles; the pins stay and keep the program attached.
func (p *Pinned) Close() error {
	var errs []error
	if p.Link != nil {
		errs = append(errs, p.Link.Close())
		p.Link = nil
	}
	if p.Objs != nil {
		errs = append(errs, p.Objs.Close())
	}
	if p.pageMap != nil {
		errs = append(errs, p.pageMap.Close())
		p.pageMap = nil
	}
	return errors.Join(errs...)
}

// removePins unpins what a pin directory may hold, by name (never anything else: a mistyped
// --pin-dir must not unpin another program's objects), and with rmdir removes the directory if
// that empties it (not while a collector is about to pin there: it holds a lock on the directory,
// LockPinDir). A missing directory is fine.
func removePins(dir string, rmdir bool) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read pin directory: %w", err)
	}
	var errs []error
	for _, e := range ents {
		n := e.Name()
		if n == pinRunName || n == pinLinkName || n == pinBaselineName ||
			strings.HasPrefix(n, pinProgPrefix) || strings.HasPrefix(n, pinMapPrefix) {
			if err := os.Remove(filepath.Join(dir, n)); err != nil {
				errs = append(errs, fmt.Errorf("unpin %s: %w", n, err))
			}
		}
	}
	if !rmdir {
		return errors.Join(errs...)
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("remove pin directory: %w", err))
	}
	return errors.Join(errs...)
}

// eachObject calls fn with every map (m set) and program (p set) field of objs and the name
// the object has in the ELF.
func eachObject(objs *plObjects, fn func(name string, m **ebpf.Map, p **ebpf.Program) error) error {
	for _, group := range []any{&objs.plMaps, &objs.plPrograms} {
		v := reflect.ValueOf(group).Elem()
		for i := range v.NumField() {
			name := v.Type().Field(i).Tag.Get("ebpf")
			switch f := v.Field(i).Addr().Interface().(type) {
			case **ebpf.Map:
				if err := fn(name, f, nil); err != nil {
					return err
				}
			case **ebpf.Program:
				if err := fn(name, nil, f); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
