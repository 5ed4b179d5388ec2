// Package pcapfile reads capture files, pcap and pcapng alike, and turns the link types
// packetlake can parse into Ethernet frames. The collector's replay (`packetlake decode`,
// `collect --pcap`) and the tests share it.
package pcapfile

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Frame is one captured packet.
type Frame struct {
	Data    []byte // captured bytes
	WireLen int    // length on the wire (>= len(Data) when the capture was cut by a snaplen)
	Time    time.Time
}

// Source is a capture being read, packet by packet.
type Source interface {
	ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// Capture is a capture file being read. Records whose header is impossible (a capture length
// above the original length or the snapshot length; in pcapng also a block whose length is not
// repeated at its end) are skipped, so one damaged record does not end the file: Damaged lists
// them.
type Capture struct {
	Source
	f *filter
}

// Damaged returns the records skipped so far.
func (c *Capture) Damaged() []Damage {
	if c.f == nil {
		return nil
	}
	return c.f.damage
}

// Open starts reading a pcap or pcapng capture (told apart by their magic numbers) and returns
// its link type.
func Open(r *bufio.Reader) (*Capture, layers.LinkType, error) {
	magic, err := r.Peek(4)
	if err != nil {
		return nil, 0, fmt.Errorf("not a capture file: %w", err)
	}
	if bytes.Equal(magic, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		f := newNgFilter(r)
		ng, err := pcapgo.NewNgReader(f, pcapgo.NgReaderOptions{ErrorOnMismatchingLinkType: true, SkipUnknownVersion: true})
		if err != nil {
			return nil, 0, fmt.Errorf("pcapng: %w", err)
		}
		return &Capture{Source: ng, f: f}, ng.LinkType(), nil
	}
	var src io.Reader = r
	var f *filter
	switch binary.LittleEndian.Uint32(magic) {
	case 0xa1b2c3d4, 0xa1b23c4d, 0xd4c3b2a1, 0x4d3cb2a1:
		if f, err = newPcapFilter(r); err != nil {
			return nil, 0, fmt.Errorf("pcap: %w", err)
		}
		src = f
	}
	pr, err := pcapgo.NewReader(src) // gzip-compressed pcap goes straight to gopacket, unchecked
	if err != nil {
		return nil, 0, fmt.Errorf("neither pcap nor pcapng: %w", err)
	}
	return &Capture{Source: pr, f: f}, pr.LinkType(), nil
}

// Convertible reports whether ToEthernet can turn frames of this link type into Ethernet.
func Convertible(lt layers.LinkType) bool {
	return lt == layers.LinkTypeEthernet || lt == layers.LinkTypeNull || lt == layers.LinkTypeLoop
}

// ReadAll reads every frame of a pcap or pcapng file and returns them with the file's link type.
// Damaged records are skipped (see Capture); ReadAllDamaged also returns them.
func ReadAll(path string) ([]Frame, layers.LinkType, error) {
	frames, lt, _, err := ReadAllDamaged(path)
	return frames, lt, err
}

// ReadAllDamaged is ReadAll that also returns the damaged records it skipped.
func ReadAllDamaged(path string) ([]Frame, layers.LinkType, []Damage, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, nil, err
	}
	defer f.Close()
	src, lt, err := Open(bufio.NewReader(f))
	if err != nil {
		return nil, 0, nil, fmt.Errorf("%s: %w", path, err)
	}
	var frames []Frame
	for {
		data, ci, err := src.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return frames, lt, src.Damaged(), nil
		}
		if err != nil {
			return frames, lt, src.Damaged(), fmt.Errorf("%s: frame %d: %w", path, len(frames)+1, err)
		}
		frames = append(frames, Frame{Data: bytes.Clone(data), WireLen: ci.Length, Time: ci.Timestamp})
	}
}

// ToEthernet returns data as an Ethernet frame. Ethernet frames are returned as they are; BSD
// loopback frames (DLT_NULL, DLT_LOOP: a 4-byte address family) get a 14-byte Ethernet header
// with zero MACs in place of it, so XDP/TC programs can parse them. ok is false for other link
// types or an unknown address family.
func ToEthernet(lt layers.LinkType, data []byte) (eth []byte, ok bool) {
	switch lt {
	case layers.LinkTypeEthernet:
		return data, true
	case layers.LinkTypeNull, layers.LinkTypeLoop:
	default:
		return nil, false
	}
	if len(data) < 4 {
		return nil, false
	}
	// DLT_NULL stores the family in the capturing host's byte order, DLT_LOOP in network order.
	fam := binary.LittleEndian.Uint32(data)
	if fam > 0xffff {
		fam = binary.BigEndian.Uint32(data)
	}
	var et uint16
	switch fam {
	case 2: // AF_INET
		et = 0x0800
	case 10, 24, 28, 30: // AF_INET6: Linux, NetBSD/OpenBSD, FreeBSD, macOS
		et = 0x86dd
	default:
		return nil, false
	}
	eth = make([]byte, 14, 14+len(data)-4)
	binary.BigEndian.PutUint16(eth[12:], et)
	return append(eth, data[4:]...), true
}
