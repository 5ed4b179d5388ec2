package ingester

import (
	"context"
	"fmt"
	"slices"
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
// batch, never reallocated once grown. Arrow's own builders were 3× slower to append to (39 vs
// 13 ms per 100k rows: a validity bit per value of columns that are never null, and buffers
// handed to each record and allocated anew; see BENCH.md).
//
// The rows fill chunks of chunkRows, each sent as one record batch of the stream, instead of one
// slice per column that doubles as the batch grows: every doubling copied the rows held so far
// and touched fresh memory, which in a fresh ingester facing a backlog (every batch is a first
// batch there, grown to MaxBatchRows) was 45% of its Go CPU (ingester/BENCH.md, "chunked
// columns"). ClickHouse squashes an INSERT's record batches into one block before writing
// (min_insert_block_size_rows/bytes, 1M rows/256 MiB by default, far above a batch), so parts,
// views and deduplication tokens are those of one record batch.
type arrowBatch struct {
	w      *arrowHTTPWriter
	chunks []*arrowChunk // chunks[:used] hold the rows, in order; the rest are kept for later batches
	used   int
	n      int
	sealed bool
	body   ipcBody // the encoded ArrowStream, kept for retries
}

// chunkRows is the rows of one chunk: 32768 rows of the ~236 bytes of fixed-width columns a
// packet has are ~7.7 MB, few record batches per INSERT (8 at MaxBatchRows' 250k) and little
// left unused in a batch's last chunk.
const chunkRows = 32768

// arrowChunk is up to chunkRows rows of every column.
type arrowChunk struct {
	cols []arrowColumn
	n    int
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
	b := &arrowBatch{w: w}
	b.Reset()
	return b
}

// Append adds a frame's rows column by column: one switch per column per chunk of rows and a
// tight loop over the rows, where a switch per column per row was half the ingester's Go time
// (ingester/BENCH.md, ingcpu). The rows go in runs small enough to stay in the L1/L2 cache
// while every column reads them (a Packet is ~450 bytes; a whole frame of 1000 would not).
func (b *arrowBatch) Append(ps []record.Packet) {
	if b.sealed {
		panic("ingester: Append to a batch already sent")
	}
	const run = 64
	for len(ps) > 0 {
		c := b.filling()
		k := min(len(ps), run, chunkRows-c.n)
		c.append(b.w.cols, ps[:k])
		b.n += k
		ps = ps[k:]
	}
}

// filling returns the chunk rows go into next, starting a new one when the last is full. The
// first chunk's columns grow from nothing as rows come (a trickle's batch stays small); a
// batch that needs a second chunk is a big one, so later chunks are made whole at once.
func (b *arrowBatch) filling() *arrowChunk {
	if b.used > 0 && b.chunks[b.used-1].n < chunkRows {
		return b.chunks[b.used-1]
	}
	if b.used == len(b.chunks) {
		c := &arrowChunk{cols: make([]arrowColumn, len(b.w.cols))}
		if b.used > 0 {
			c.preallocate(b.w.cols)
		}
		c.reset()
		b.chunks = append(b.chunks, c)
	}
	b.used++
	return b.chunks[b.used-1]
}

// preallocate gives the fixed-width columns and string offsets room for chunkRows rows.
func (c *arrowChunk) preallocate(cols []packetColumn) {
	for i := range c.cols {
		col := &c.cols[i]
		switch cols[i].Kind {
		case kindTime, kindUint64:
			col.u64 = make([]uint64, 0, chunkRows)
		case kindString:
			col.offs = make([]int32, 0, chunkRows+1)
		case kindUint8:
			col.u8 = make([]uint8, 0, chunkRows)
		case kindUint16:
			col.u16 = make([]uint16, 0, chunkRows)
		case kindUint32:
			col.u32 = make([]uint32, 0, chunkRows)
		case kindIPv6:
			col.ip = make([][16]byte, 0, chunkRows)
		}
	}
}

func (c *arrowChunk) reset() {
	for i := range c.cols {
		col := &c.cols[i]
		col.u8, col.u16, col.u32, col.u64, col.ip, col.data = col.u8[:0], col.u16[:0], col.u32[:0], col.u64[:0], col.ip[:0], col.data[:0]
		col.offs = append(col.offs[:0], 0)
	}
	c.n = 0
}

func (c *arrowChunk) append(cols []packetColumn, ps []record.Packet) {
	for i := range c.cols {
		off, col := cols[i].Offset, &c.cols[i]
		switch cols[i].Kind {
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
	c.n += len(ps)
}

// appendStrings appends the string field at offset off of every packet in ps to an Arrow utf8
// column (data, offs). Most string columns are empty on most rows (the L7 ones): those skip the
// copy, which was a call to memmove per column per row.
func appendStrings(data []byte, offs []int32, ps []record.Packet, off uintptr) ([]byte, []int32) {
	offs = slices.Grow(offs, len(ps))
	for j := range ps {
		if s := *(*string)(unsafe.Add(unsafe.Pointer(&ps[j]), off)); s != "" {
			data = append(data, s...)
		}
		offs = append(offs, int32(len(data)))
	}
	return data, offs
}

// appendField appends the field at offset off (a T) of every packet in ps to dst.
func appendField[T any](dst []T, ps []record.Packet, off uintptr) []T {
	dst = slices.Grow(dst, len(ps))
	for j := range ps {
		dst = append(dst, *(*T)(unsafe.Add(unsafe.Pointer(&ps[j]), off)))
	}
	return dst
}

func (b *arrowBatch) Len() int { return b.n }

func (b *arrowBatch) Reset() {
	for _, c := range b.chunks[:b.used] {
		c.reset()
	}
	b.used, b.n, b.sealed = 0, 0, false
	b.body.reset()
}

// bytesOf is the memory of a slice of fixed-width values, as Arrow reads it (little-endian:
// packetlake runs on little-endian hosts, as the BPF records already assume).
func bytesOf[T any](s []T) []byte {
	var zero T
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(zero)))
}

// array wraps column i of chunk c as an Arrow array, without copying. No validity bitmap: no
// column of packets is Nullable.
func (b *arrowBatch) array(c *arrowChunk, i int, dt arrow.DataType) arrow.Array {
	col := &c.cols[i]
	var values []byte
	switch b.w.cols[i].Kind {
	case kindTime, kindUint64:
		values = bytesOf(col.u64)
	case kindString:
		d := array.NewData(dt, c.n, []*memory.Buffer{nil, memory.NewBufferBytes(bytesOf(col.offs)), memory.NewBufferBytes(col.data)}, nil, 0, 0)
		defer d.Release()
		return array.MakeFromData(d)
	case kindUint8:
		values = col.u8
	case kindUint16:
		values = bytesOf(col.u16)
	case kindUint32:
		values = bytesOf(col.u32)
	case kindIPv6:
		values = bytesOf(col.ip)
	}
	d := array.NewData(dt, c.n, []*memory.Buffer{nil, memory.NewBufferBytes(values)}, nil, 0, 0)
	defer d.Release()
	return array.MakeFromData(d)
}

// records wraps each chunk in use as an Arrow record, without copying; the caller releases them.
func (b *arrowBatch) records() []arrow.Record {
	recs := make([]arrow.Record, b.used)
	for k, c := range b.chunks[:b.used] {
		arrs := make([]arrow.Array, len(c.cols))
		for i, f := range b.w.schema.Fields() {
			arrs[i] = b.array(c, i, f.Type)
		}
		recs[k] = array.NewRecord(b.w.schema, arrs, int64(c.n))
		for _, a := range arrs {
			a.Release()
		}
	}
	return recs
}

// seal encodes the rows as an Arrow IPC stream into body, a record batch per chunk, once;
// retries resend body.
func (b *arrowBatch) seal() error {
	if b.sealed {
		return nil
	}
	recs := b.records()
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	b.body.reset()
	iw := ipc.NewWriter(&b.body, ipc.WithSchema(b.w.schema))
	for _, rec := range recs {
		if err := iw.Write(rec); err != nil {
			return fmt.Errorf("encode arrow: %w", err)
		}
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
