package collector

import (
	"bufio"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/packetlake/packetlake/bpf"
	"github.com/packetlake/packetlake/record"
)

// decodeRingBytes is plenty for a replay: each packet's record is read before the next runs.
const decodeRingBytes = 1 << 20

// DecodeCapture replays a capture through the BPF program and writes one JSON object per
// recorded packet to w (see record.WriteJSON). Samples travel the collector→ingester path — packed
// into a record.Frame, checked by record.ParseFrame, decoded by record.Frame — so the output is
// what the ingester would store: host is empty, iface is the file's name, collector_id 0, seq
// counts from 0 and ts is the capture time.
func DecodeCapture(path string, w io.Writer) (ReplayStats, error) {
	objs, err := bpf.Load(bpf.Config{RingBytes: decodeRingBytes})
	if err != nil {
		return ReplayStats{}, fmt.Errorf("load BPF program: %w", err)
	}
	defer objs.Close()

	bw := bufio.NewWriter(w)
	hdr := record.FrameHeader{Flags: record.FrameWallClock, Iface: filepath.Base(path)}
	var (
		fb    record.FrameBuilder
		pkt   record.Packet
		line  []byte
		werr  error
		count int
		l7st  = record.NewL7State() // ClientHellos over several QUIC Initials or TCP segments, as the ingester does
	)
	if len(hdr.Iface) > 255 {
		hdr.Iface = hdr.Iface[:255]
	}
	emit := func() error {
		if count == 0 {
			return nil
		}
		h, samples, err := record.ParseFrame(fb.Bytes())
		if err != nil {
			return fmt.Errorf("frame built from the capture does not parse: %w", err)
		}
		err = record.FrameState(h, samples, &pkt, l7st, func(p *record.Packet) error {
			line = record.AppendJSON(line[:0], p)
			_, werr = bw.Write(line)
			return werr
		})
		hdr.FirstSeq = fb.NextSeq()
		count = 0
		return err
	}
	st, err := ReplayPcap(objs, path, func(sample []byte, _ time.Time) error {
		n, err := record.SampleLen(sample)
		if err != nil || n != len(sample) {
			return fmt.Errorf("malformed ring sample of %d bytes: %v", len(sample), err)
		}
		if count == 0 {
			fb.Reset(hdr)
		}
		fb.Append(sample)
		if count++; fb.Len() >= 256<<10 {
			return emit()
		}
		return nil
	})
	if err == nil {
		err = emit()
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return st, err
}
