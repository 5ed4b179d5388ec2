package ingester

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
)

// Pre-sorting (issue #18): ClickHouse sorts every inserted block by the table's ORDER BY before
// writing the part, unless it finds the block already sorted (it checks first). Sorting the
// batch here, on columns the ingester already holds, is cheaper for ClickHouse by more than it
// costs the ingester (BENCHMARKS.md, "Ingest", issue #18), and the views see the rows in the same
// order. packets is ORDER BY (toStartOfHour(ts), dst_addr, src_addr, ts); the hour is taken in
// UTC: on a server whose time zone is not a whole number of hours from UTC ClickHouse finds the
// block unsorted and sorts it itself, as before (correct, only without the saving).

// sortKey is one row's packets ORDER BY key and its index in the batch.
type sortKey struct {
	hour     uint64
	dst, src [16]byte
	ts       uint64
	row      int32
}

// sortOrder knows where the key columns are; the writer's, shared by its batches.
type sortOrder struct{ ts, dst, src int }

// sortBuffers are a batch's own, reused for each of its sorts (partitions seal in parallel).
type sortBuffers struct {
	keys []sortKey
	tmp  arrowColumn
}

func newSortOrder(cols []packetColumn) (*sortOrder, error) {
	s := &sortOrder{ts: -1, dst: -1, src: -1}
	for i, c := range cols {
		switch {
		case c.Name == "ts" && c.Kind == kindTime:
			s.ts = i
		case c.Name == "dst_addr" && c.Kind == kindIPv6:
			s.dst = i
		case c.Name == "src_addr" && c.Kind == kindIPv6:
			s.src = i
		}
	}
	if s.ts < 0 || s.dst < 0 || s.src < 0 {
		return nil, fmt.Errorf("presort: packets has no ts, dst_addr and src_addr of the expected types")
	}
	return s, nil
}

// sort reorders every column of b by (hour of ts, dst_addr, src_addr, ts). Rows with equal
// keys keep their batch order (the row index breaks ties), so a replayed batch is sent byte for
// byte the same.
func (o *sortOrder) sort(b *arrowBatch) {
	const hourNs = 3600 * 1_000_000_000
	ts, dst, src := b.cols[o.ts].u64, b.cols[o.dst].ip, b.cols[o.src].ip
	s := &b.sortBuf
	s.keys = s.keys[:0]
	sorted := true
	for i := range b.n {
		k := sortKey{hour: ts[i] / hourNs, dst: dst[i], src: src[i], ts: ts[i], row: int32(i)}
		if i > 0 && sorted && compareKeys(s.keys[i-1], k) > 0 {
			sorted = false
		}
		s.keys = append(s.keys, k)
	}
	if sorted {
		return
	}
	slices.SortFunc(s.keys, compareKeys)
	for i := range b.cols {
		permute(&b.cols[i], &s.tmp, s.keys, b.w.cols[i].Kind)
	}
}

func compareKeys(a, b sortKey) int {
	if c := cmp.Compare(a.hour, b.hour); c != 0 {
		return c
	}
	if c := bytes.Compare(a.dst[:], b.dst[:]); c != 0 {
		return c
	}
	if c := bytes.Compare(a.src[:], b.src[:]); c != 0 {
		return c
	}
	if c := cmp.Compare(a.ts, b.ts); c != 0 {
		return c
	}
	return cmp.Compare(a.row, b.row)
}

// permute writes column c in the order of keys into tmp, then swaps the two (the old buffers
// become the next column's scratch).
func permute(c, tmp *arrowColumn, keys []sortKey, kind colKind) {
	switch kind {
	case kindTime, kindUint64:
		tmp.u64 = gather(tmp.u64[:0], c.u64, keys)
		c.u64, tmp.u64 = tmp.u64, c.u64
	case kindUint8:
		tmp.u8 = gather(tmp.u8[:0], c.u8, keys)
		c.u8, tmp.u8 = tmp.u8, c.u8
	case kindUint16:
		tmp.u16 = gather(tmp.u16[:0], c.u16, keys)
		c.u16, tmp.u16 = tmp.u16, c.u16
	case kindUint32:
		tmp.u32 = gather(tmp.u32[:0], c.u32, keys)
		c.u32, tmp.u32 = tmp.u32, c.u32
	case kindIPv6:
		tmp.ip = gather(tmp.ip[:0], c.ip, keys)
		c.ip, tmp.ip = tmp.ip, c.ip
	case kindString:
		tmp.data, tmp.offs = tmp.data[:0], append(tmp.offs[:0], 0)
		for _, k := range keys {
			tmp.data = append(tmp.data, c.data[c.offs[k.row]:c.offs[k.row+1]]...)
			tmp.offs = append(tmp.offs, int32(len(tmp.data)))
		}
		c.data, tmp.data = tmp.data, c.data
		c.offs, tmp.offs = tmp.offs, c.offs
	}
}

func gather[T any](dst, src []T, keys []sortKey) []T {
	for _, k := range keys {
		dst = append(dst, src[k.row])
	}
	return dst
}
