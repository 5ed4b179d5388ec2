package ingester

import "testing"

func BenchmarkAppendArrow(b *testing.B) {
	cfg := DefaultConfig()
	cfg.ClickHouseHTTP, cfg.Database = "x", "exp"
	w, _ := newArrowHTTPWriter(cfg)
	pkts := benchPackets(b)
	batch := w.NewBatch().(*arrowBatch)
	b.ResetTimer()
	for range b.N {
		for i := range pkts {
			batch.Append(&pkts[i])
		}
		batch.seal()
		batch.Reset()
	}
}

func BenchmarkAppendNative(b *testing.B) {
	w := &nativeWriter{}
	w.cols, _ = packetColumns()
	pkts := benchPackets(b)
	batch := w.NewBatch()
	b.ResetTimer()
	for range b.N {
		for i := range pkts {
			batch.Append(&pkts[i])
		}
		batch.Reset()
	}
}
