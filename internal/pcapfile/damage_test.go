package pcapfile

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/packetlake/packetlake/internal/testkit/testpcaps"
)

// pcapRecordOffsets returns the offset of every record header of a little-endian classic pcap.
func pcapRecordOffsets(t *testing.T, b []byte) []int {
	if binary.LittleEndian.Uint32(b) != 0xa1b2c3d4 {
		t.Fatalf("want a little-endian microsecond pcap, magic %x", b[:4])
	}
	var offs []int
	for off := 24; off+16 <= len(b); off += 16 + int(binary.LittleEndian.Uint32(b[off+8:])) {
		offs = append(offs, off)
	}
	return offs
}

// ngPacketOffsets returns the offset of every enhanced packet block of a little-endian pcapng.
func ngPacketOffsets(b []byte) []int {
	var offs []int
	for off := 0; off+12 <= len(b); off += int(binary.LittleEndian.Uint32(b[off+4:])) {
		if binary.LittleEndian.Uint32(b[off:]) == ngEPB {
			offs = append(offs, off)
		}
	}
	return offs
}

func writeTemp(t *testing.T, b []byte) string {
	p := filepath.Join(t.TempDir(), "damaged")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// without returns frames minus the i-th.
func without(frames []Frame, i int) []Frame {
	return append(append([]Frame(nil), frames[:i]...), frames[i+1:]...)
}

func sameFrames(t *testing.T, what string, got, want []Frame) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d frames, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i].Data, want[i].Data) || got[i].WireLen != want[i].WireLen || !got[i].Time.Equal(want[i].Time) {
			t.Fatalf("%s: frame %d differs", what, i+1)
		}
	}
}

// TestDamagedPcapRecordSkipped: in a real classic pcap, one record header made impossible (the
// first, one in the middle, the last; capture length above the original length, or above the
// snapshot length) is skipped, named, and every other record is read as before.
func TestDamagedPcapRecordSkipped(t *testing.T) {
	path := testpcaps.Path("ja4/macos_tcp_flags.pcap")
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the shared captures (testpcaps, $PACKETLAKE_PCAPS): %v", err)
	}
	want, _, dmg, err := ReadAllDamaged(path)
	if err != nil || len(dmg) != 0 {
		t.Fatalf("undamaged capture: %v, %v", err, dmg)
	}
	offs := pcapRecordOffsets(t, orig)
	if len(offs) != len(want) || len(want) < 10 {
		t.Fatalf("%d record headers, %d frames", len(offs), len(want))
	}
	for _, c := range []struct {
		name   string
		damage func(h []byte)
		reason string
	}{
		{"capture length above original length", func(h []byte) {
			binary.LittleEndian.PutUint32(h[8:], binary.LittleEndian.Uint32(h[12:])+1)
		}, "above original length"},
		{"both lengths above the snapshot length", func(h []byte) {
			binary.LittleEndian.PutUint32(h[8:], 300000)
			binary.LittleEndian.PutUint32(h[12:], 300000)
		}, "above snapshot length"},
		{"header bytes flipped", func(h []byte) {
			for i := 8; i < 16; i++ {
				h[i] ^= 0xff
			}
		}, "capture length"},
	} {
		for _, i := range []int{0, len(offs) / 2, len(offs) - 1} {
			b := bytes.Clone(orig)
			c.damage(b[offs[i] : offs[i]+16])
			got, _, dmg, err := ReadAllDamaged(writeTemp(t, b))
			if err != nil {
				t.Fatalf("%s, record %d: %v", c.name, i+1, err)
			}
			if len(dmg) != 1 || dmg[0].Record != i+1 || dmg[0].Offset != int64(offs[i]) || !strings.Contains(dmg[0].Reason, c.reason) {
				t.Fatalf("%s, record %d at %d: damage %v", c.name, i+1, offs[i], dmg)
			}
			sameFrames(t, c.name, got, without(want, i))
			t.Logf("%s: %v", c.name, dmg[0])
		}
	}
}

// TestDamagedPcapngBlockSkipped: the same in a real pcapng: an enhanced packet block whose
// capture length is above its original length, or whose block length is broken.
func TestDamagedPcapngBlockSkipped(t *testing.T) {
	path := testpcaps.Path("ja4/tls-sni.pcapng")
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the shared captures (testpcaps, $PACKETLAKE_PCAPS): %v", err)
	}
	want, _, dmg, err := ReadAllDamaged(path)
	if err != nil || len(dmg) != 0 {
		t.Fatalf("undamaged capture: %v, %v", err, dmg)
	}
	offs := ngPacketOffsets(orig)
	if len(offs) != len(want) {
		t.Fatalf("%d packet blocks, %d frames", len(offs), len(want))
	}
	for _, c := range []struct {
		name   string
		damage func(blk []byte)
		reason string
	}{
		{"capture length above original length", func(blk []byte) {
			binary.LittleEndian.PutUint32(blk[20:], binary.LittleEndian.Uint32(blk[24:])+1)
		}, "above original length"},
		{"block length broken", func(blk []byte) {
			binary.LittleEndian.PutUint32(blk[4:], binary.LittleEndian.Uint32(blk[4:])+4)
		}, "block framing"},
	} {
		for _, i := range []int{0, len(offs) / 2, len(offs) - 1} {
			b := bytes.Clone(orig)
			c.damage(b[offs[i]:])
			got, _, dmg, err := ReadAllDamaged(writeTemp(t, b))
			if err != nil {
				t.Fatalf("%s, block %d: %v", c.name, i+1, err)
			}
			if len(dmg) != 1 || dmg[0].Offset != int64(offs[i]) || !strings.Contains(dmg[0].Reason, c.reason) {
				t.Fatalf("%s, block %d at %d: damage %v", c.name, i+1, offs[i], dmg)
			}
			sameFrames(t, c.name, got, without(want, i))
			t.Logf("%s: %v", c.name, dmg[0])
		}
	}
}

// TestSharedCapturesUndamaged: no record of the shared captures is taken for damaged.
func TestSharedCapturesUndamaged(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(testpcaps.Dir(), "*", "*.pcap*"))
	for _, f := range files {
		if _, _, dmg, err := ReadAllDamaged(f); len(dmg) != 0 {
			t.Errorf("%s: %v (err %v)", f, dmg, err)
		}
	}
}
