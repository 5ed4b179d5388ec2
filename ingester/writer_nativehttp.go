package ingester

import (
	"encoding/binary"
	"strings"
)

// The native-http writer (issue #18, "native vs ArrowStream"): the arrow-http writer's batch,
// the same columns, encoded in ClickHouse's own Native format instead of an Arrow IPC stream,
// so that the server copies fixed-width columns as they are instead of converting Arrow arrays.
// Over HTTP a Native body is blocks of: number of columns and of rows (varints), then per column
// its name, its type and its values (fixed-width little-endian; String as varint length and
// bytes per row). LowCardinality(String) columns are sent as String: ClickHouse builds the
// dictionary on insert as it does from Arrow's utf8.

// nativeType is the type a column is sent as.
func nativeType(chType string) string {
	if inner, ok := strings.CutPrefix(chType, "LowCardinality("); ok {
		return strings.TrimSuffix(inner, ")")
	}
	return chType
}

// encodeNative writes b's rows as one Native block into b.body.
func (b *arrowBatch) encodeNative() {
	out := b.body.AvailableBuffer()
	out = binary.AppendUvarint(out, uint64(len(b.cols)))
	out = binary.AppendUvarint(out, uint64(b.n))
	for i, c := range b.w.cols {
		col := &b.cols[i]
		out = appendNativeString(out, c.Name)
		out = appendNativeString(out, nativeType(c.CHType))
		switch c.Kind {
		case kindTime, kindUint64:
			out = append(out, bytesOf(col.u64)...)
		case kindUint8:
			out = append(out, col.u8...)
		case kindUint16:
			out = append(out, bytesOf(col.u16)...)
		case kindUint32:
			out = append(out, bytesOf(col.u32)...)
		case kindIPv6:
			out = append(out, bytesOf(col.ip)...)
		case kindString:
			for r := range b.n {
				v := col.data[col.offs[r]:col.offs[r+1]]
				out = binary.AppendUvarint(out, uint64(len(v)))
				out = append(out, v...)
			}
		}
	}
	b.body.Write(out)
}

func appendNativeString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}
