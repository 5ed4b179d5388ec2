package ingester

import (
	"context"
	"fmt"
	"unsafe"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/packetlake/packetlake/internal/chconn"
	"github.com/packetlake/packetlake/record"
)

// arrowHTTPWriter sends `INSERT INTO packets FORMAT ArrowStream` over ClickHouse's HTTP
// interface, the Arrow IPC stream as the request body. ClickHouse converts Arrow columns
// wholesale, where the native client appends row by row through reflection for some types.
type arrowHTTPWriter struct {
	client *chconn.Client
	insert *chconn.PreparedInsert
	schema *arrow.Schema
	cols   []packetColumn
}

func newArrowHTTPWriter(cfg Config) (*arrowHTTPWriter, error) {
	if cfg.ClickHouse.HTTPAddr == "" {
		return nil, fmt.Errorf("writer %s needs the ClickHouse HTTP address", WriterArrowHTTP)
	}
	cols, err := packetColumns()
	if err != nil {
		return nil, err
	}
	sc, err := ArrowSchema()
	if err != nil {
		return nil, err
	}
	client, err := cfg.ClickHouse.Client(chconn.Timeout(cfg.InsertTimeout))
	if err != nil {
		return nil, err
	}
	settings := map[string]string{
		// Buffer the response so the status code reflects the outcome of the whole insert,
		// not a 200 sent before an exception in the middle of it.
		"wait_end_of_query": "1",
	}
	for k, v := range insertSettings {
		settings[k] = v
	}
	return &arrowHTTPWriter{
		client: client,
		insert: client.PrepareInsert("INSERT INTO packets ("+columnList(cols)+") FORMAT ArrowStream", settings),
		schema: sc,
		cols:   cols,
	}, nil
}

// arrowBatch accumulates rows column by column in Go slices laid out exactly as Arrow's
// buffers (little-endian values; offsets + bytes for strings) and wraps them as Arrow arrays
// without copying when the batch is sent. They are the batch's builders: reused for every
// batch, grown (doubling) to the largest batch, never reallocated after. Arrow's own builders were 3×
// slower to append to (39 vs 13 ms per 100k rows: a validity bit per value of columns that
// are never null, and buffers handed to each record and allocated anew; see BENCH.md).
type arrowBatch struct {
	w      *arrowHTTPWriter
	cols   []arrowColumn
	n      int
	sealed bool
	body   ipcBody // the encoded ArrowStream, kept for retries
}

// arrowColumn holds one column; only the fields of its kind are used.
type arrowColumn struct {
	u8   []uint8
	u16  []uint16
	u32  []uint32
	u64  []uint64 // also ts: Arrow's timestamp[ns] is an int64 of ns
	ip   [][16]byte
	offs []int32 // strings: row i is data[offs[i]:offs[i+1]]
	data []byte
}

func (w *arrowHTTPWriter) NewBatch() Batch {
	b := &arrowBatch{w: w, cols: make([]arrowColumn, len(w.cols))}
	b.Reset()
	return b
}

// Append adds a frame's rows column by column: one switch per column per chunk of rows and a
// tight loop over the rows, where a switch per column per row was half the ingester's Go time
// (ingester/BENCH.md, ingcpu). The rows go in chunks small enough to stay in the L1/L2 cache
// while every column reads them (a Packet is ~450 bytes; a whole frame of 1000 would not).
func (b *arrowBatch) Append(ps []record.Packet) {
	if b.sealed {
		panic("ingester: Append to a batch already sent")
	}
	const chunk = 64
	for len(ps) > 0 {
		n := min(len(ps), chunk)
		b.appendChunk(ps[:n])
		ps = ps[n:]
	}
}

func (b *arrowBatch) appendChunk(ps []record.Packet) {
	for i := range b.cols {
		off, col := b.w.cols[i].Offset, &b.cols[i]
		switch b.w.cols[i].Kind {
		case kindTime, kindUint64:
			col.u64 = appendField[uint64](col.u64, ps, off)
		case kindString:
			col.data, col.offs = appendStrings(col.data, col.offs, ps, off)
		case kindUint8:
			col.u8 = appendField[uint8](col.u8, ps, off)
		case kindUint16:
			col.u16 = appendField[uint16](col.u16, ps, off)
		case kindUint32:
			col.u32 = appendField[uint32](col.u32, ps, off)
		case kindIPv6:
			col.ip = appendField[[16]byte](col.ip, ps, off)
		}
	}
	b.n += len(ps)
}

// appendStrings appends the string field at offset off of every packet in ps to an Arrow utf8
// column (data, offs). Most string columns are empty on most rows (the L7 ones): those skip the
// copy, which was a call to memmove per column per row.
func appendStrings(data []byte, offs []int32, ps []record.Packet, off uintptr) ([]byte, []int32) {
	offs = double(offs, len(ps))
	for j := range ps {
		if s := *(*string)(unsafe.Add(unsafe.Pointer(&ps[j]), off)); s != "" {
			data = append(double(data, len(s)), s...)
		}
		offs = append(offs, int32(len(data)))
	}
	return data, offs
}

// appendField appends the field at offset off (a T) of every packet in ps to dst.
func appendField[T any](dst []T, ps []record.Packet, off uintptr) []T {
	dst = double(dst, len(ps))
	for j := range ps {
		dst = append(dst, *(*T)(unsafe.Add(unsafe.Pointer(&ps[j]), off)))
	}
	return dst
}

// double returns s with room for n more values, doubling its capacity when it must grow.
// append (and slices.Grow) grows a slice past 256 values by only ~1.25x, so a column growing
// to a batch of 250k rows was copied some four times its final size on the way; in a fresh
// ingester facing a backlog, where every batch is a first batch grown to MaxBatchRows, that
// copying was 45% of the ingester's CPU (ingester/BENCH.md, "columns that double"). Doubling
// copies a column about once. A batch's columns keep their capacity for the next batch, so a
// long-running ingester pays this once per partition assignment either way.
func double[T any](s []T, n int) []T {
	if cap(s)-len(s) >= n {
		return s
	}
	out := make([]T, len(s), max(2*cap(s), len(s)+n, 1024))
	copy(out, s)
	return out
}

func (b *arrowBatch) Len() int { return b.n }

func (b *arrowBatch) Reset() {
	for i := range b.cols {
		c := &b.cols[i]
		c.u8, c.u16, c.u32, c.u64, c.ip, c.data = c.u8[:0], c.u16[:0], c.u32[:0], c.u64[:0], c.ip[:0], c.data[:0]
		c.offs = append(c.offs[:0], 0)
	}
	b.n, b.sealed = 0, false
	b.body.reset()
}

// bytesOf is the memory of a slice of fixed-width values, as Arrow reads it (little-endian:
// packetlake runs on little-endian hosts, as the BPF records already assume).
func bytesOf[T any](s []T) []byte {
	var zero T
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(zero)))
}

// array wraps column i's slices as an Arrow array, without copying. No validity bitmap: no
// column of packets is Nullable.
func (b *arrowBatch) array(i int, dt arrow.DataType) arrow.Array {
	c := &b.cols[i]
	var values []byte
	switch b.w.cols[i].Kind {
	case kindTime, kindUint64:
		values = bytesOf(c.u64)
	case kindString:
		d := array.NewData(dt, b.n, []*memory.Buffer{nil, memory.NewBufferBytes(bytesOf(c.offs)), memory.NewBufferBytes(c.data)}, nil, 0, 0)
		defer d.Release()
		return array.MakeFromData(d)
	case kindUint8:
		values = c.u8
	case kindUint16:
		values = bytesOf(c.u16)
	case kindUint32:
		values = bytesOf(c.u32)
	case kindIPv6:
		values = bytesOf(c.ip)
	}
	d := array.NewData(dt, b.n, []*memory.Buffer{nil, memory.NewBufferBytes(values)}, nil, 0, 0)
	defer d.Release()
	return array.MakeFromData(d)
}

// record wraps the batch's columns as an Arrow record, without copying; the caller releases it.
func (b *arrowBatch) record() arrow.Record {
	arrs := make([]arrow.Array, len(b.cols))
	for i, f := range b.w.schema.Fields() {
		arrs[i] = b.array(i, f.Type)
	}
	rec := array.NewRecord(b.w.schema, arrs, int64(b.n))
	for _, a := range arrs {
		a.Release()
	}
	return rec
}

// seal encodes the rows as an Arrow IPC stream into body, once; retries resend body.
func (b *arrowBatch) seal() error {
	if b.sealed {
		return nil
	}
	rec := b.record()
	defer rec.Release()
	b.body.reset()
	iw := ipc.NewWriter(&b.body, ipc.WithSchema(b.w.schema))
	if err := iw.Write(rec); err != nil {
		return fmt.Errorf("encode arrow: %w", err)
	}
	if err := iw.Close(); err != nil {
		return fmt.Errorf("encode arrow: %w", err)
	}
	b.sealed = true
	return nil
}

func (w *arrowHTTPWriter) Insert(ctx context.Context, batch Batch, token string) error {
	b := batch.(*arrowBatch)
	if b.n == 0 {
		return nil
	}
	if err := b.seal(); err != nil {
		return err
	}
	if err := w.insert.SendParts(ctx, b.body.parts, token); err != nil {
		return fmt.Errorf("insert packets over http: %w", err)
	}
	return nil
}

func (w *arrowHTTPWriter) Close() error {
	w.client.Close()
	return nil
}
