package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// A frame is the value of one Kafka record: many pl_record samples from one collector and
// interface, so Kafka's per-record cost is paid once per frame instead of once per packet.
//
//	offset size
//	0      4    magic "PLK" and version (1)
//	4      2    header length H, bytes from the start of the frame to the first sample
//	6      2    sizeof(struct pl_record) the collector was built with
//	8      4    number of samples N
//	12     4    flags (FrameWallClock)
//	16     8    collector_id
//	24     8    seq of the first sample; sample i has seq+i
//	32     8    clock offset, ns: wall-clock ts = ts_ns + offset
//	40     1+n  host (length-prefixed)
//	       1+n  iface (length-prefixed)
//	H      ...  N samples back to back, each a pl_record, its tunnel trailer (if tunnel_depth
//	            != 0) and its snippet (record/kernel.go)
//
// All integers little-endian. Fields are only ever added before H, so a reader that knows
// version 1 can read any frame whose magic says version 1. The pl_record size tells the sample
// layouts apart: this build's (KernelRecordSize) and the 152-byte one from before the tunnel
// trailer, converted on reading (legacy.go); any other is refused.
const (
	FrameVersion    = 1
	frameFixedBytes = 40
	// FrameWallClock marks samples whose ts_ns is already wall-clock time (replayed captures).
	FrameWallClock = 1 << 0
)

var frameMagic = [3]byte{'P', 'L', 'K'}

// FrameHeader says who captured the samples of a frame.
type FrameHeader struct {
	CollectorID uint64
	FirstSeq    uint64
	ClockOffset int64
	Flags       uint32
	Host        string
	Iface       string
	Count       int
}

// FrameBuilder packs samples into a frame, reusing its buffer from frame to frame.
type FrameBuilder struct {
	buf   []byte
	count int
	hdr   FrameHeader
}

// Reset starts a new frame with the given header (Count is ignored and counted by Append).
func (f *FrameBuilder) Reset(h FrameHeader) {
	if len(h.Host) > 255 || len(h.Iface) > 255 {
		panic("record: host or iface name longer than 255 bytes")
	}
	f.hdr, f.count = h, 0
	f.buf = f.buf[:0]
	f.buf = append(f.buf, frameMagic[0], frameMagic[1], frameMagic[2], FrameVersion)
	hlen := frameFixedBytes + 2 + len(h.Host) + len(h.Iface)
	f.buf = binary.LittleEndian.AppendUint16(f.buf, uint16(hlen))
	f.buf = binary.LittleEndian.AppendUint16(f.buf, KernelRecordSize)
	f.buf = binary.LittleEndian.AppendUint32(f.buf, 0) // count, patched in Bytes
	f.buf = binary.LittleEndian.AppendUint32(f.buf, h.Flags)
	f.buf = binary.LittleEndian.AppendUint64(f.buf, h.CollectorID)
	f.buf = binary.LittleEndian.AppendUint64(f.buf, h.FirstSeq)
	f.buf = binary.LittleEndian.AppendUint64(f.buf, uint64(h.ClockOffset))
	f.buf = append(f.buf, byte(len(h.Host)))
	f.buf = append(f.buf, h.Host...)
	f.buf = append(f.buf, byte(len(h.Iface)))
	f.buf = append(f.buf, h.Iface...)
}

// Append adds one raw sample (as read from the ring buffer). The caller has validated it with
// SampleLen; Append copies it.
func (f *FrameBuilder) Append(sample []byte) {
	f.buf = append(f.buf, sample...)
	f.count++
}

// Len is the frame's size in bytes so far; Count the samples in it.
func (f *FrameBuilder) Len() int   { return len(f.buf) }
func (f *FrameBuilder) Count() int { return f.count }

// NextSeq is the seq the next frame of this collector starts at.
func (f *FrameBuilder) NextSeq() uint64 { return f.hdr.FirstSeq + uint64(f.count) }

// Bytes returns the finished frame. It aliases the builder's buffer until the next Reset.
func (f *FrameBuilder) Bytes() []byte {
	binary.LittleEndian.PutUint32(f.buf[8:], uint32(f.count))
	return f.buf
}

// ErrBadFrame wraps every reason a frame is refused: the ingester sends such frames to the
// dead-letter table whole.
var ErrBadFrame = errors.New("bad frame")

// ParseFrame checks a whole frame — header, and that exactly Count samples fill the rest — and
// returns its header and the samples, in this build's layout (a frame of the 152-byte layout is
// converted into a new buffer; otherwise the samples alias b). Nothing is decoded from a frame
// that fails any check, so a corrupt frame is never half ingested.
func ParseFrame(b []byte) (FrameHeader, []byte, error) {
	var h FrameHeader
	if len(b) < frameFixedBytes+2 {
		return h, nil, fmt.Errorf("%w: %d bytes, shorter than a header", ErrBadFrame, len(b))
	}
	if !bytes.Equal(b[:3], frameMagic[:]) {
		return h, nil, fmt.Errorf("%w: magic %q is not PLK", ErrBadFrame, b[:3])
	}
	if b[3] != FrameVersion {
		return h, nil, fmt.Errorf("%w: version %d, this build reads %d", ErrBadFrame, b[3], FrameVersion)
	}
	hlen := int(binary.LittleEndian.Uint16(b[4:]))
	rs := binary.LittleEndian.Uint16(b[6:])
	if rs != KernelRecordSize && rs != legacyRecordSize {
		return h, nil, fmt.Errorf("%w: pl_record is %d bytes in the frame, this build reads %d and %d", ErrBadFrame,
			rs, KernelRecordSize, legacyRecordSize)
	}
	if hlen < frameFixedBytes+2 || hlen > len(b) {
		return h, nil, fmt.Errorf("%w: header length %d out of range", ErrBadFrame, hlen)
	}
	h.Count = int(binary.LittleEndian.Uint32(b[8:]))
	h.Flags = binary.LittleEndian.Uint32(b[12:])
	h.CollectorID = binary.LittleEndian.Uint64(b[16:])
	h.FirstSeq = binary.LittleEndian.Uint64(b[24:])
	h.ClockOffset = int64(binary.LittleEndian.Uint64(b[32:]))
	rest := b[frameFixedBytes:hlen]
	var ok bool
	if h.Host, rest, ok = lenPrefixed(rest); !ok {
		return h, nil, fmt.Errorf("%w: host name overruns the header", ErrBadFrame)
	}
	if h.Iface, _, ok = lenPrefixed(rest); !ok {
		return h, nil, fmt.Errorf("%w: iface name overruns the header", ErrBadFrame)
	}
	samples := b[hlen:]
	if rs == legacyRecordSize {
		conv, err := legacySamples(samples, h.Count)
		if err != nil {
			return h, nil, fmt.Errorf("%w: %v", ErrBadFrame, err)
		}
		samples = conv
	}
	n, at := 0, 0
	for at < len(samples) {
		l, err := SampleLen(samples[at:])
		if err != nil {
			return h, nil, fmt.Errorf("%w: sample %d: %v", ErrBadFrame, n, err)
		}
		at += l
		n++
	}
	if n != h.Count {
		return h, nil, fmt.Errorf("%w: header says %d samples, found %d", ErrBadFrame, h.Count, n)
	}
	return h, samples, nil
}

func lenPrefixed(b []byte) (string, []byte, bool) {
	if len(b) < 1 || len(b) < 1+int(b[0]) {
		return "", nil, false
	}
	return string(b[1 : 1+b[0]]), b[1+b[0]:], true
}
