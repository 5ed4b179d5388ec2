package ingester

import (
	"context"
	"fmt"
	"time"
	"unsafe"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/packetlake/packetlake/record"
)

// nativeWriter inserts with clickhouse-go/v2 over the native protocol: PrepareBatch, then one
// Column(i).Append per column with the batch's typed slices.
type nativeWriter struct {
	conn   driver.Conn
	insert string
	cols   []packetColumn
}

func newNativeWriter(cfg Config) (*nativeWriter, error) {
	cols, err := packetColumns()
	if err != nil {
		return nil, err
	}
	conn, err := openNative(cfg)
	if err != nil {
		return nil, err
	}
	return &nativeWriter{conn: conn, insert: "INSERT INTO packets (" + columnList(cols) + ")", cols: cols}, nil
}

// openNative opens a clickhouse-go connection pool on cfg's database.
func openNative(cfg Config) (driver.Conn, error) {
	return cfg.ClickHouse.Open(func(o *clickhouse.Options) {
		o.ReadTimeout, o.MaxOpenConns = cfg.InsertTimeout, 16
	})
}

// nativeColumn holds one column's values; only the slice of its kind is used.
type nativeColumn struct {
	ts  []time.Time
	str []string
	u8  []uint8
	u16 []uint16
	u32 []uint32
	u64 []uint64
	ip  [][16]byte
}

type nativeBatch struct {
	w    *nativeWriter
	cols []nativeColumn
	n    int
}

func (w *nativeWriter) NewBatch() Batch {
	return &nativeBatch{w: w, cols: make([]nativeColumn, len(w.cols))}
}

func (b *nativeBatch) Append(ps []record.Packet) {
	for i := range ps {
		b.append(&ps[i])
	}
}

func (b *nativeBatch) append(p *record.Packet) {
	ptr := unsafe.Pointer(p)
	for i, c := range b.w.cols {
		v, col := unsafe.Add(ptr, c.Offset), &b.cols[i]
		switch c.Kind {
		case kindTime:
			// clickhouse-go reads a []int64 as milliseconds whatever the precision: pass times.
			col.ts = append(col.ts, time.Unix(0, *(*int64)(v)).UTC())
		case kindString:
			col.str = append(col.str, *(*string)(v))
		case kindUint8:
			col.u8 = append(col.u8, *(*uint8)(v))
		case kindUint16:
			col.u16 = append(col.u16, *(*uint16)(v))
		case kindUint32:
			col.u32 = append(col.u32, *(*uint32)(v))
		case kindUint64:
			col.u64 = append(col.u64, *(*uint64)(v))
		case kindIPv6:
			col.ip = append(col.ip, *(*[16]byte)(v))
		}
	}
	b.n++
}

func (b *nativeBatch) Len() int { return b.n }

func (b *nativeBatch) Reset() {
	for i := range b.cols {
		c := &b.cols[i]
		clear(c.str) // let the strings go; the slices' memory stays for the next batch
		c.ts, c.str, c.u8, c.u16, c.u32, c.u64, c.ip = c.ts[:0], c.str[:0], c.u8[:0], c.u16[:0], c.u32[:0], c.u64[:0], c.ip[:0]
	}
	b.n = 0
}

func (w *nativeWriter) Insert(ctx context.Context, batch Batch, token string) (err error) {
	b := batch.(*nativeBatch)
	if b.n == 0 {
		return nil
	}
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(dedupSettings(token)))
	nb, err := w.conn.PrepareBatch(ctx, w.insert, driver.WithReleaseConnection())
	if err != nil {
		return fmt.Errorf("insert packets (native): prepare: %w", err)
	}
	defer func() {
		if err != nil {
			_ = nb.Abort()
		}
	}()
	for i, c := range w.cols {
		var v any
		switch col := &b.cols[i]; c.Kind {
		case kindTime:
			v = col.ts
		case kindString:
			v = col.str
		case kindUint8:
			v = col.u8
		case kindUint16:
			v = col.u16
		case kindUint32:
			v = col.u32
		case kindUint64:
			v = col.u64
		case kindIPv6:
			v = col.ip
		}
		if err := nb.Column(i).Append(v); err != nil {
			return fmt.Errorf("insert packets (native): column %s: %w", c.Name, err)
		}
	}
	if err := nb.Send(); err != nil {
		return fmt.Errorf("insert packets (native): %w", err)
	}
	return nil
}

func (w *nativeWriter) Close() error { return w.conn.Close() }
