package ingester

import (
	"bytes"
	"testing"

	"github.com/apache/arrow/go/v15/arrow/ipc"
)

// TestIPCBodySameBytes: the parts a sealed batch sends (ipcBody, column buffers by reference)
// join into exactly the stream the IPC writer writes into a plain buffer, for a batch of
// 100k rows (columns sent by reference) and one of 10 (every part copied); and they still do
// after the next batch was appended and sealed in another batch of the same writer.
func TestIPCBodySameBytes(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ClickHouse.HTTPAddr, cfg.ClickHouse.Database = "x", "exp" // never dialled
	w, err := newArrowHTTPWriter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pkts := benchPackets(t)
	for _, n := range []int{len(pkts), 10} {
		b := w.NewBatch().(*arrowBatch)
		b.Append(pkts[:n])
		if err := b.seal(); err != nil {
			t.Fatal(err)
		}
		other := w.NewBatch().(*arrowBatch)
		other.Append(pkts[len(pkts)-n:])
		if err := other.seal(); err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		rec := b.record()
		iw := ipc.NewWriter(&want, ipc.WithSchema(w.schema))
		if err := iw.Write(rec); err != nil {
			t.Fatal(err)
		}
		if err := iw.Close(); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		got := bytes.Join(b.body.parts, nil)
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("%d rows: the parts join into %d bytes that differ from the %d bytes of the IPC stream", n, len(got), want.Len())
		}
		if n == len(pkts) && len(b.body.parts) > 1000 {
			t.Errorf("%d rows: %d parts", n, len(b.body.parts))
		}
	}
}
