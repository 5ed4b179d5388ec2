package analytics

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/packetlake/packetlake/collector"
	"github.com/packetlake/packetlake/internal/testkit/nettest"
	"github.com/packetlake/packetlake/record"
	"github.com/packetlake/packetlake/schema"
)

// Capture is one capture file as `packetlake decode` records it.
type Capture struct {
	Name    string // "tcpdump/dns_udp.pcap"
	Packets []record.Packet
}

// DecodeCaptures runs every capture of the shared tcpdump/ and ja4/ sets under dir (tests get dir
// from testpcaps.Dir) through the BPF program and decoder (collector.DecodeCapture, what
// `packetlake decode` prints) and parses the JSON back.
// Captures that are not Ethernet (BSD loopback) are given an Ethernet header first, as
// e2e/decode_test.go does; their copies go to tmp. Needs the privileges to load BPF programs.
func DecodeCaptures(dir, tmp string) ([]Capture, error) {
	var paths []string
	for _, sub := range []string{"tcpdump", "ja4"} {
		m, err := filepath.Glob(filepath.Join(dir, sub, "*.pcap*"))
		if err != nil {
			return nil, err
		}
		paths = append(paths, m...)
	}
	sort.Strings(paths)
	if len(paths) < 25 {
		return nil, fmt.Errorf("found %d captures under %s, expected the shared tcpdump/ and ja4/ sets", len(paths), dir)
	}
	// Two at a time: loading and verifying the BPF program is most of the cost, and the test
	// machines have two cores.
	out := make([]Capture, len(paths))
	errs := make([]error, len(paths))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for i, path := range paths {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i], errs[i] = decodeCapture(path, tmp)
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

func decodeCapture(path, tmp string) (Capture, error) {
	name := filepath.Base(filepath.Dir(path)) + "/" + filepath.Base(path)
	c := Capture{Name: name}
	eth, err := ethernetCapture(path, tmp)
	if err != nil {
		return c, fmt.Errorf("%s: %w", name, err)
	}
	var buf bytes.Buffer
	st, err := collector.DecodeCapture(eth, &buf)
	if err != nil {
		return c, fmt.Errorf("decode %s: %w", name, err)
	}
	if st.Refused > 0 {
		return c, fmt.Errorf("decode %s: %d of %d packets refused", name, st.Refused, st.Packets)
	}
	for line := range bytes.Lines(buf.Bytes()) {
		p, err := ParseDecodeJSON(line)
		if err != nil {
			return c, fmt.Errorf("%s line %d: %w", name, len(c.Packets)+1, err)
		}
		c.Packets = append(c.Packets, p)
	}
	if len(c.Packets) == 0 {
		return c, fmt.Errorf("decode %s: no packets", name)
	}
	return c, nil
}

// ethernetCapture returns path if the capture is Ethernet, else the path of an Ethernet copy
// written under tmp (BSD loopback frames get a header with zero MACs: nettest.ToEthernet).
func ethernetCapture(path, tmp string) (string, error) {
	frames, lt, err := nettest.ReadPcap(path)
	if err != nil {
		return "", err
	}
	if lt == layers.LinkTypeEthernet {
		return path, nil
	}
	out := filepath.Join(tmp, strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))+".eth.pcap")
	f, err := os.Create(out)
	if err != nil {
		return "", err
	}
	defer f.Close()
	w := pcapgo.NewWriterNanos(f)
	if err := w.WriteFileHeader(262144, layers.LinkTypeEthernet); err != nil {
		return "", err
	}
	for i, fr := range frames {
		eth, ok := nettest.ToEthernet(lt, fr.Data)
		if !ok {
			return "", fmt.Errorf("frame %d: link type %s cannot be given an Ethernet header", i+1, lt)
		}
		ci := gopacket.CaptureInfo{Timestamp: fr.Time, CaptureLength: len(eth), Length: fr.WireLen - len(fr.Data) + len(eth)}
		if err := w.WritePacket(ci, eth); err != nil {
			return "", err
		}
	}
	return out, f.Close()
}

// packetFields maps each column to its record.Packet field index.
var packetFields = func() map[string]int {
	t := reflect.TypeFor[record.Packet]()
	m := map[string]int{}
	for i := range t.NumField() {
		m[t.Field(i).Tag.Get("col")] = i
	}
	return m
}()

// ParseDecodeJSON reads one line of `packetlake decode` (record.AppendJSON) back into a
// record.Packet. Every column of schema.Columns must be present, and nothing else.
func ParseDecodeJSON(line []byte) (record.Packet, error) {
	var p record.Packet
	var obj map[string]json.RawMessage
	d := json.NewDecoder(bytes.NewReader(line))
	if err := d.Decode(&obj); err != nil {
		return p, err
	}
	if len(obj) != len(schema.Columns) {
		return p, fmt.Errorf("%d keys, schema has %d columns", len(obj), len(schema.Columns))
	}
	v := reflect.ValueOf(&p).Elem()
	for _, col := range schema.Columns {
		raw, ok := obj[col.Name]
		if !ok {
			return p, fmt.Errorf("column %s missing", col.Name)
		}
		i, ok := packetFields[col.Name]
		if !ok {
			return p, fmt.Errorf("column %s has no record.Packet field", col.Name)
		}
		f := v.Field(i)
		var s string
		switch {
		case col.Name == "ts":
			if err := json.Unmarshal(raw, &s); err != nil {
				return p, fmt.Errorf("ts: %w", err)
			}
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return p, fmt.Errorf("ts: %w", err)
			}
			f.SetInt(t.UnixNano())
		case col.Name == "src_mac" || col.Name == "dst_mac":
			if err := json.Unmarshal(raw, &s); err != nil {
				return p, fmt.Errorf("%s: %w", col.Name, err)
			}
			n, err := strconv.ParseUint(strings.ReplaceAll(s, ":", ""), 16, 64)
			if err != nil || len(s) != 17 {
				return p, fmt.Errorf("%s: %q is not a MAC", col.Name, s)
			}
			f.SetUint(n)
		case col.CHType == "IPv6":
			if err := json.Unmarshal(raw, &s); err != nil {
				return p, fmt.Errorf("%s: %w", col.Name, err)
			}
			a, err := netip.ParseAddr(s)
			if err != nil {
				return p, fmt.Errorf("%s: %w", col.Name, err)
			}
			reflect.Copy(f, reflect.ValueOf(a.As16()))
		case f.Kind() == reflect.String:
			if err := json.Unmarshal(raw, &s); err != nil {
				return p, fmt.Errorf("%s: %w", col.Name, err)
			}
			f.SetString(s)
		default:
			n, err := strconv.ParseUint(string(raw), 10, 64)
			if err != nil || f.OverflowUint(n) {
				return p, fmt.Errorf("%s: %s is not a %s", col.Name, raw, f.Type())
			}
			f.SetUint(n)
		}
	}
	return p, nil
}

// Batch is one INSERT: the ingester sends every batch with a deduplication token.
type Batch struct {
	Token   string
	Packets []record.Packet
}

// Dataset is the known set of packets, in the batches they are inserted in.
type Dataset struct {
	Batches []Batch
	// Replays are batches sent a second time (the same rows and token, as the ingester does after a
	// crash): ClickHouse must drop them from packets and from every rollup.
	Replays []Batch
	// From and Until bound every ts (Until exclusive).
	From, Until time.Time
}

// Packets returns every packet of the dataset once.
func (d *Dataset) Packets() []record.Packet {
	var out []record.Packet
	for _, b := range d.Batches {
		out = append(out, b.Packets...)
	}
	return out
}

// CaptureSpacing separates the start of consecutive captures in a Dataset: 28 captures spread
// over about 11 minutes, so the minute rollups see many minutes and the data crosses an hour.
const CaptureSpacing = 23 * time.Second

// Build places the captures and the synthetic packets after base (see Synthetic): capture i
// starts at base + 50 min + i × CaptureSpacing and keeps its packets' relative times (captures
// spanning more than two minutes get one packet per second instead), so capture timestamps from
// 1995 to 2038 become recent ones no TTL drops. Captures alternate between hosts edge-1 and
// edge-2, each its own collector run (collector_id = index + 1); iface stays the file name.
func Build(captures []Capture, base time.Time) *Dataset {
	d := &Dataset{From: base, Until: base.Add(2 * time.Hour)}
	for i, c := range captures {
		first, last := c.Packets[0].TS, c.Packets[0].TS
		for _, p := range c.Packets {
			first, last = min(first, p.TS), max(last, p.TS)
		}
		start := base.Add(50*time.Minute + time.Duration(i)*CaptureSpacing).UnixNano()
		b := Batch{Token: fmt.Sprintf("capture-%d", i)}
		for j, p := range c.Packets {
			if last-first > int64(2*time.Minute) {
				p.TS = start + int64(j)*int64(time.Second)
			} else {
				p.TS = start + p.TS - first
			}
			p.Host = fmt.Sprintf("edge-%d", i%2+1)
			p.CollectorID = uint64(i + 1)
			b.Packets = append(b.Packets, p)
		}
		d.Batches = append(d.Batches, b)
	}
	d.Batches = append(d.Batches, Synthetic(base)...)
	// Replay one capture batch and one synthetic batch, as after an ingester crash.
	d.Replays = []Batch{d.Batches[len(captures)/2], d.Batches[len(d.Batches)-1]}
	for _, b := range d.Batches {
		for _, p := range b.Packets {
			if t := time.Unix(0, p.TS); t.Before(d.From) || !t.Before(d.Until) {
				panic(fmt.Sprintf("analytics: packet at %s outside the dataset's range", t))
			}
		}
	}
	return d
}
