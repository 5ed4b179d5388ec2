package collector

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/packetlake/packetlake/bpf"
	"github.com/packetlake/packetlake/internal/pcapfile"
	"github.com/packetlake/packetlake/record"
)

// ReplayStats says what a replay did with a capture.
type ReplayStats struct {
	Packets int // packets read from the capture
	Samples int // ring samples the program emitted for them (sampled-out packets emit none)
	Refused int // packets the kernel would not run (BPF_PROG_TEST_RUN error, e.g. too big)
	// Damaged are the capture's records skipped for an impossible header (capture length above
	// the original length or the snapshot length): the rest of the file is still replayed.
	Damaged []pcapfile.Damage
}

// ReplayPcap runs every packet of a capture (pcap or pcapng; Ethernet, or BSD loopback given an Ethernet header) through
// the loaded BPF program with BPF_PROG_TEST_RUN — the very parser that runs on live traffic —
// and calls fn with each sample the program wrote to the ring, its pl_record ts_ns already
// replaced by the capture time. sample aliases a reused buffer: fn must copy what it keeps.
// The program batches records per CPU, but bpf.TestRun has it write its batch out right after
// the packet's record, so each packet yields one sample holding its one record, in the ring
// when TestRun returns.
//
// objs must not be attached anywhere while replaying: every record in its ring is taken to be
// the current packet's (a live packet's record staged on the same CPU would come out with it). Packets run as fast as the kernel takes them, not at capture pace.
// A packet the kernel refuses (BPF_PROG_TEST_RUN takes at most about a page of linear data) is
// counted in Refused and skipped, a damaged record of the file in Damaged; an error from fn stops
// the replay and is returned.
func ReplayPcap(objs *bpf.Objects, path string, fn func(sample []byte, ts time.Time) error) (ReplayStats, error) {
	var st ReplayStats
	f, err := os.Open(path)
	if err != nil {
		return st, err
	}
	defer f.Close()
	src, link, err := pcapfile.Open(bufio.NewReaderSize(f, 1<<16))
	if err != nil {
		return st, fmt.Errorf("%s: %w", path, err)
	}
	// The program parses from an Ethernet header: BSD loopback captures get one (zero MACs);
	// anything else would come out as garbage records.
	if !pcapfile.Convertible(link) {
		return st, fmt.Errorf("%s: link type %d (%s): only Ethernet and BSD loopback captures can be replayed", path, uint32(link), link)
	}
	rd, err := ringbuf.NewReader(objs.Events())
	if err != nil {
		return st, fmt.Errorf("ring buffer reader: %w", err)
	}
	defer rd.Close()
	// A deadline in the past makes ReadInto return what is in the ring, then ErrDeadlineExceeded,
	// without sleeping: TestRun is synchronous, so the packet's record is already there.
	rd.SetDeadline(time.Unix(1, 0))
	var rec ringbuf.Record
	for {
		data, ci, err := src.ReadPacketData()
		st.Damaged = src.Damaged()
		if errors.Is(err, io.EOF) {
			return st, nil
		}
		if err != nil {
			return st, fmt.Errorf("%s: packet %d: %w", path, st.Packets+1, err)
		}
		st.Packets++
		eth, ok := pcapfile.ToEthernet(link, data)
		if !ok {
			st.Refused++ // a loopback frame of an address family that is not IP
			continue
		}
		wireLen := ci.Length + len(eth) - len(data)
		if _, err := objs.TestRun(eth); err != nil {
			st.Refused++
			continue
		}
		for {
			err := rd.ReadInto(&rec)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				return st, fmt.Errorf("read ring after packet %d: %w", st.Packets, err)
			}
			st.Samples++
			stampSample(rec.RawSample, uint64(ci.Timestamp.UnixNano()), wireLen)
			if err := fn(rec.RawSample, ci.Timestamp); err != nil {
				return st, err
			}
		}
	}
}

// stampSample sets ts_ns of every pl_record in a ring sample to the capture time, and pkt_len to
// the wire length when the capture kept fewer bytes; a malformed tail is left for the caller's
// validation to count.
func stampSample(b []byte, ts uint64, wireLen int) {
	for len(b) > 0 {
		n, err := record.SampleLen(b)
		if err != nil {
			return
		}
		record.SetTSNanos(b[:n], ts)
		if wireLen > 0 {
			record.SetPktLen(b[:n], uint32(wireLen))
		}
		b = b[n:]
	}
}
