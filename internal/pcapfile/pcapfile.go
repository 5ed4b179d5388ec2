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

// Open starts reading a pcap or pcapng capture (told apart by their magic numbers) and returns
// its link type.
func Open(r *bufio.Reader) (Source, layers.LinkType, error) {
	magic, err := r.Peek(4)
	if err != nil {
		return nil, 0, fmt.Errorf("not a capture file: %w", err)
	}
	if bytes.Equal(magic, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		ng, err := pcapgo.NewNgReader(r, pcapgo.NgReaderOptions{ErrorOnMismatchingLinkType: true, SkipUnknownVersion: true})
		if err != nil {
			return nil, 0, fmt.Errorf("pcapng: %w", err)
		}
		return ng, ng.LinkType(), nil
	}
	pr, err := pcapgo.NewReader(r)
	if err != nil {
		return nil, 0, fmt.Errorf("neither pcap nor pcapng: %w", err)
	}
	return pr, pr.LinkType(), nil
}

// Convertible reports whether ToEthernet can turn frames of this link type into Ethernet.
func Convertible(lt layers.LinkType) bool {
	return lt == layers.LinkTypeEthernet || lt == layers.LinkTypeNull || lt == layers.LinkTypeLoop
}

// ReadAll reads every frame of a pcap or pcapng file and returns them with the file's link type.
func ReadAll(path string) ([]Frame, layers.LinkType, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	src, lt, err := Open(bufio.NewReader(f))
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	var frames []Frame
	for {
		data, ci, err := src.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return frames, lt, nil
		}
		if err != nil {
			return frames, lt, fmt.Errorf("%s: frame %d: %w", path, len(frames)+1, err)
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
