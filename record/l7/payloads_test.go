package l7

import (
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// payloads returns the real L4 payloads of testdata/payloads.tsv by name. They let the benchmarks
// and the fuzz seeds use real traffic without running tshark.
func payloads(tb testing.TB) map[string][]byte {
	tb.Helper()
	data, err := os.ReadFile("testdata/payloads.tsv")
	if err != nil {
		tb.Fatal(err)
	}
	m := map[string][]byte{}
	for line := range strings.Lines(string(data)) {
		if strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(strings.TrimSpace(line), "\t")
		if len(cols) != 3 {
			tb.Fatalf("payloads.tsv: bad line %q", line)
		}
		b, err := hex.DecodeString(cols[2])
		if err != nil {
			tb.Fatalf("payloads.tsv %s: %v", cols[0], err)
		}
		m[cols[0]] = b
	}
	return m
}

func payload(tb testing.TB, name string) []byte {
	tb.Helper()
	b, ok := payloads(tb)[name]
	if !ok {
		tb.Fatalf("payloads.tsv has no %s", name)
	}
	return b
}
