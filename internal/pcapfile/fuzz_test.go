package pcapfile

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/packetlake/packetlake/internal/testkit/testpcaps"
)

// FuzzCapture feeds arbitrary bytes to the reader `decode` and `collect --pcap` use: Open must
// tell pcap from pcapng or refuse, reading must end in frames or an error (never a panic or a
// hang), and every frame ToEthernet accepts is at least an Ethernet header. Seeded with the
// shared captures under 8 KiB, pcap and pcapng.
//
//	go test -run '^$' -fuzz '^FuzzCapture$' -fuzztime 60s ./internal/pcapfile/
func FuzzCapture(f *testing.F) {
	for _, pattern := range []string{"tcpdump/*.pcap", "ja4/*.pcap*"} {
		files, _ := filepath.Glob(filepath.Join(testpcaps.Dir(), pattern))
		for _, p := range files {
			if st, err := os.Stat(p); err == nil && st.Size() < 8<<10 {
				b, err := os.ReadFile(p)
				if err != nil {
					f.Fatal(err)
				}
				f.Add(b)
			}
		}
	}
	f.Add([]byte{0x0a, 0x0d, 0x0d, 0x0a})
	f.Fuzz(func(t *testing.T, b []byte) {
		src, lt, err := Open(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			return
		}
		for n := 0; n < 10000; n++ {
			data, ci, err := src.ReadPacketData()
			if errors.Is(err, io.EOF) || err != nil {
				return
			}
			if len(data) > len(b) {
				t.Fatalf("frame of %d bytes from a %d-byte input", len(data), len(b))
			}
			if ci.CaptureLength != len(data) {
				t.Fatalf("capture length %d, frame %d bytes", ci.CaptureLength, len(data))
			}
			if eth, ok := ToEthernet(lt, data); ok && lt != 1 && len(eth) < 14 {
				t.Fatalf("ToEthernet made a %d-byte frame", len(eth))
			}
		}
		t.Fatalf("10000 frames from %d bytes", len(b))
	})
}
