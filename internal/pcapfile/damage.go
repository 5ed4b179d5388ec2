package pcapfile

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Damage is a record of a capture that was skipped because its header is impossible.
type Damage struct {
	Record int    // 1-based position among the file's records (damaged ones included)
	Offset int64  // byte offset of its header in the file
	Reason string // what is impossible about it
}

func (d Damage) String() string {
	return fmt.Sprintf("record %d at byte %d: %s", d.Record, d.Offset, d.Reason)
}

// Limits of what a record header may say. maxSnap is libpcap's largest snapshot length
// (MAXIMUM_SNAPLEN): a pcap header announcing no snapshot length (0) is held to it.
const (
	maxSnap      = 262144
	maxNgBlock   = 1 << 20 // a pcapng block longer than this (the read window) is passed on unchecked
	maxClockSkew = 86400   // a resynchronised record is within a day of the last good one
)

// A filter sits between the file and gopacket's reader: it passes the records (pcap) or blocks
// (pcapng) whose headers are possible and drops the others, noting each in damage, so the reader
// behind it sees a well-formed capture and the rest of the file is read.
type filter struct {
	src    *bufio.Reader
	off    int64 // file offset of src's next byte
	out    []byte
	held   int // bytes of out still in src's buffer (peeked), discarded once out is read
	err    error
	step   func() error
	damage []Damage
	n      int // records seen

	// classic pcap
	order   binary.ByteOrder
	nano    bool
	snaplen uint32
	lastTS  uint32
	haveTS  bool

	// pcapng: snapshot length of each interface of the current section
	snaps []uint32
}

func (f *filter) Read(p []byte) (int, error) {
	for len(f.out) == 0 && f.err == nil {
		f.err = f.step()
	}
	if len(f.out) > 0 {
		n := copy(p, f.out)
		if f.out = f.out[n:]; len(f.out) == 0 && f.held > 0 {
			f.discard(f.held)
			f.held = 0
		}
		return n, nil
	}
	return 0, f.err
}

// pass moves n bytes from the input to the output: in place in src's buffer when they fit.
func (f *filter) pass(n int) error {
	if n <= f.src.Size() {
		b, err := f.src.Peek(n)
		if len(b) < n {
			if err == io.EOF {
				return f.rest() // a truncated last record: the reader reports it as before
			}
			return err
		}
		f.out, f.held = b, n
		return nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(f.src, b); err != nil {
		return err
	}
	f.out, f.off = b, f.off+int64(n)
	return nil
}

func (f *filter) discard(n int) {
	d, _ := f.src.Discard(n)
	f.off += int64(d)
}

// rest passes whatever is left (a truncated tail: the reader reports it as before).
func (f *filter) rest() error {
	b, err := io.ReadAll(f.src)
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return io.EOF
	}
	f.out, f.off = b, f.off+int64(len(b))
	return nil
}

// newPcapFilter reads the 24-byte file header of a classic pcap file (already checked by the
// caller to carry one of the four magic numbers).
func newPcapFilter(r io.Reader) (*filter, error) {
	f := &filter{src: bufio.NewReaderSize(r, 2*(maxSnap+16)+16)}
	h, err := f.src.Peek(24)
	if err != nil {
		return nil, err
	}
	switch binary.LittleEndian.Uint32(h) {
	case 0xa1b2c3d4:
		f.order = binary.LittleEndian
	case 0xa1b23c4d:
		f.order, f.nano = binary.LittleEndian, true
	case 0xd4c3b2a1:
		f.order = binary.BigEndian
	case 0x4d3cb2a1:
		f.order, f.nano = binary.BigEndian, true
	default:
		return nil, errors.New("not a pcap file")
	}
	f.snaplen = f.order.Uint32(h[16:])
	f.step = f.pcapRecord
	return f, f.pass(24)
}

// pcapLimit is the largest possible capture length: the snapshot length, or libpcap's largest
// for a header announcing none (0) or a nonsensical one (above 64 MiB).
func (f *filter) pcapLimit() uint32 {
	if f.snaplen == 0 || f.snaplen > 64<<20 {
		return maxSnap
	}
	return f.snaplen
}

// pcapProblem says what is impossible about a record header ("" if nothing).
func (f *filter) pcapProblem(h []byte) string {
	capLen, origLen := f.order.Uint32(h[8:]), f.order.Uint32(h[12:])
	switch {
	case capLen > origLen:
		return fmt.Sprintf("capture length %d above original length %d", capLen, origLen)
	case capLen > f.pcapLimit():
		return fmt.Sprintf("capture length %d above snapshot length %d", capLen, f.pcapLimit())
	}
	return ""
}

// pcapPlausible: a header a resynchronisation may stop at. Stricter than pcapProblem: the
// sub-second field is in range and the time is near the last good record's.
func (f *filter) pcapPlausible(h []byte) bool {
	if f.pcapProblem(h) != "" {
		return false
	}
	sub, sec := f.order.Uint32(h[4:]), f.order.Uint32(h[0:])
	if f.nano && sub >= 1e9 || !f.nano && sub >= 1e6 || f.order.Uint32(h[12:]) > 16*maxSnap {
		return false
	}
	return !f.haveTS || int64(sec)-int64(f.lastTS) <= maxClockSkew && int64(f.lastTS)-int64(sec) <= maxClockSkew
}

func (f *filter) pcapRecord() error {
	h, err := f.src.Peek(16)
	if len(h) < 16 {
		if err == io.EOF && len(h) > 0 {
			return f.rest()
		}
		return err
	}
	f.n++
	if why := f.pcapProblem(h); why != "" {
		f.damage = append(f.damage, Damage{Record: f.n, Offset: f.off, Reason: why})
		return f.pcapResync()
	}
	f.lastTS, f.haveTS = f.order.Uint32(h), true
	return f.pass(16 + int(f.order.Uint32(h[8:])))
}

// pcapResync skips the damaged record: its length is unknown, so the next record is the first
// position after its header where a plausible header is followed by another one (or by the end
// of the file), searched within one read window. Finding none, the rest of the file is skipped.
func (f *filter) pcapResync() error {
	win, _ := f.src.Peek(f.src.Size())
	for p := 16; p+16 <= len(win); p++ {
		h := win[p : p+16]
		if !f.pcapPlausible(h) {
			continue
		}
		next := p + 16 + int(f.order.Uint32(h[8:]))
		if next == len(win) && len(win) < f.src.Size() || next+16 <= len(win) && f.pcapPlausible(win[next:next+16]) {
			f.discard(p)
			return nil
		}
	}
	f.damage[len(f.damage)-1].Reason += "; no good record found after it, rest of file skipped"
	f.discard(len(win))
	return io.EOF
}

// newNgFilter starts on a pcapng file (its first block is a section header).
func newNgFilter(r io.Reader) *filter {
	f := &filter{src: bufio.NewReaderSize(r, 1<<20)}
	f.step = f.ngBlock
	return f
}

const (
	ngSHB = 0x0a0d0d0a
	ngIDB = 1
	ngSPB = 3
	ngEPB = 6
)

func (f *filter) ngBlock() error {
	h, err := f.src.Peek(12)
	if len(h) < 12 {
		if err == io.EOF && len(h) > 0 {
			return f.rest()
		}
		return err
	}
	if binary.LittleEndian.Uint32(h) == ngSHB {
		switch binary.LittleEndian.Uint32(h[8:]) {
		case 0x1a2b3c4d:
			f.order = binary.LittleEndian
		case 0x4d3c2b1a:
			f.order = binary.BigEndian
		default:
			return f.rest() // gopacket names the problem
		}
		f.snaps = f.snaps[:0]
	}
	if f.order == nil {
		return f.rest()
	}
	typ, n := f.order.Uint32(h), int(f.order.Uint32(h[4:]))
	if n < 12 || n%4 != 0 {
		return f.ngDamaged(fmt.Sprintf("block length %d", n))
	}
	if n > maxNgBlock {
		return f.pass(n)
	}
	b, err := f.src.Peek(n)
	if len(b) < n {
		if err == io.EOF {
			return f.rest()
		}
		return err
	}
	if f.order.Uint32(b[n-4:]) != uint32(n) {
		return f.ngDamaged(fmt.Sprintf("block length %d not repeated at its end", n))
	}
	switch typ {
	case ngIDB:
		if n >= 20 {
			f.snaps = append(f.snaps, f.order.Uint32(b[12:]))
		}
	case ngEPB, ngSPB:
		f.n++
		if why := f.ngPacketProblem(typ, b); why != "" {
			f.damage = append(f.damage, Damage{Record: f.n, Offset: f.off, Reason: why})
			f.discard(n)
			return nil
		}
	}
	return f.pass(n)
}

// ngPacketProblem says what is impossible about an enhanced or simple packet block.
func (f *filter) ngPacketProblem(typ uint32, b []byte) string {
	n := len(b)
	if typ == ngSPB {
		return "" // no capture length: gopacket derives it from the block
	}
	if n < 32 {
		return fmt.Sprintf("enhanced packet block of %d bytes", n)
	}
	iface, capLen, origLen := f.order.Uint32(b[8:]), f.order.Uint32(b[20:]), f.order.Uint32(b[24:])
	switch {
	case capLen > origLen:
		return fmt.Sprintf("capture length %d above original length %d", capLen, origLen)
	case int(iface) < len(f.snaps) && f.snaps[iface] != 0 && capLen > f.snaps[iface]:
		return fmt.Sprintf("capture length %d above snapshot length %d", capLen, f.snaps[iface])
	case int64(capLen) > int64(n-32):
		return fmt.Sprintf("capture length %d above the block's %d bytes of data", capLen, n-32)
	}
	return ""
}

// ngDamaged skips a block whose framing is broken: the next block is the first 4-byte aligned
// position whose length is repeated at its end, within one read window.
func (f *filter) ngDamaged(why string) error {
	f.n++
	f.damage = append(f.damage, Damage{Record: f.n, Offset: f.off, Reason: "block framing: " + why})
	win, _ := f.src.Peek(f.src.Size())
	for p := 4; p+12 <= len(win); p += 4 {
		n := int(f.order.Uint32(win[p+4:]))
		if n >= 12 && n%4 == 0 && p+n <= len(win) && f.order.Uint32(win[p+n-4:]) == uint32(n) {
			f.discard(p)
			return nil
		}
	}
	f.damage[len(f.damage)-1].Reason += "; no good block found after it, rest of file skipped"
	f.discard(len(win))
	return io.EOF
}
