package ingester

import (
	"cmp"
	"encoding/binary"
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

// sortKey is one row's packets ORDER BY key and its index in the batch. The addresses are
// held as big-endian halves: comparing two integers is the byte order ClickHouse sorts IPv6 in,
// at a fraction of bytes.Compare's cost (measured: BenchmarkPresort).
type sortKey struct {
	hour, dstHi, dstLo, srcHi, srcLo, ts uint64
	row                                  int32
}

func keyOf(ts uint64, dst, src *[16]byte, row int) sortKey {
	return sortKey{hour: ts / hourNs, ts: ts, row: int32(row),
		dstHi: binary.BigEndian.Uint64(dst[:8]), dstLo: binary.BigEndian.Uint64(dst[8:]),
		srcHi: binary.BigEndian.Uint64(src[:8]), srcLo: binary.BigEndian.Uint64(src[8:])}
}

const hourNs = 3600 * 1_000_000_000

// sortOrder knows where the key columns are; the writer's, shared by its batches.
type sortOrder struct{ ts, dst, src int }

// sortBuffers are a batch's own, reused for each of its sorts (partitions seal in parallel).
type sortBuffers struct {
	keys, placed []sortKey
	group        []int32 // group of each row
	order        []int32 // groups in key order
	groups       []group
	ids          map[groupKey]int32
	tmp          arrowColumn
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
//
// Traffic is a few thousand conversations interleaved in time, each mostly in time order
// already: the rows are grouped by (hour, dst, src) with a map, the groups sorted, the rows
// placed group after group (a counting sort, keeping each group's batch order), and only a group
// whose times go backwards is sorted again. A general sort of the 100k keys measured twice as slow
// (BenchmarkPresort).
func (o *sortOrder) sort(b *arrowBatch) {
	ts, dst, src := b.cols[o.ts].u64, b.cols[o.dst].ip, b.cols[o.src].ip
	s := &b.sortBuf
	s.keys, s.group = s.keys[:0], s.group[:0]
	if s.ids == nil {
		s.ids = map[groupKey]int32{}
	}
	clear(s.ids)
	s.groups = s.groups[:0]
	sorted := true
	for i := range b.n {
		k := keyOf(ts[i], &dst[i], &src[i], i)
		if i > 0 && sorted && compareKeys(s.keys[i-1], k) > 0 {
			sorted = false
		}
		s.keys = append(s.keys, k)
		gk := groupKey{k.hour, k.dstHi, k.dstLo, k.srcHi, k.srcLo}
		id, ok := s.ids[gk]
		if !ok {
			id = int32(len(s.groups))
			s.ids[gk] = id
			s.groups = append(s.groups, group{key: k})
		}
		s.groups[id].n++
		s.group = append(s.group, id)
	}
	if sorted {
		return
	}
	// Order the groups, then give each its first position.
	s.order = s.order[:0]
	for i := range s.groups {
		s.order = append(s.order, int32(i))
	}
	slices.SortFunc(s.order, func(a, b int32) int { return compareKeys(s.groups[a].key, s.groups[b].key) })
	pos := int32(0)
	for _, g := range s.order {
		s.groups[g].next, s.groups[g].start = pos, pos
		pos += s.groups[g].n
	}
	s.placed = slices.Grow(s.placed[:0], b.n)[:b.n]
	for i, g := range s.group {
		s.placed[s.groups[g].next] = s.keys[i]
		s.groups[g].next++
	}
	for _, g := range s.groups {
		seg := s.placed[g.start : g.start+g.n]
		if !slices.IsSortedFunc(seg, compareKeys) {
			slices.SortFunc(seg, compareKeys)
		}
	}
	for i := range b.cols {
		permute(&b.cols[i], &s.tmp, s.placed, b.w.cols[i].Kind)
	}
}

type groupKey struct{ hour, dstHi, dstLo, srcHi, srcLo uint64 }

type group struct {
	key            sortKey // of its first row
	n, start, next int32
}

func compareKeys(a, b sortKey) int {
	if c := cmp.Compare(a.hour, b.hour); c != 0 {
		return c
	}
	if c := cmp.Compare(a.dstHi, b.dstHi); c != 0 {
		return c
	}
	if c := cmp.Compare(a.dstLo, b.dstLo); c != 0 {
		return c
	}
	if c := cmp.Compare(a.srcHi, b.srcHi); c != 0 {
		return c
	}
	if c := cmp.Compare(a.srcLo, b.srcLo); c != 0 {
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
	if constant(c, kind) { // most L7 and tunnel columns of a batch: nothing to move
		return
	}
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

// constant says whether every row of c holds the same value (then any order is the same).
func constant(c *arrowColumn, kind colKind) bool {
	switch kind {
	case kindTime, kindUint64:
		return same(c.u64)
	case kindUint8:
		return same(c.u8)
	case kindUint16:
		return same(c.u16)
	case kindUint32:
		return same(c.u32)
	case kindIPv6:
		return same(c.ip)
	case kindString:
		return len(c.data) == 0
	}
	return false
}

func same[T comparable](s []T) bool {
	for _, v := range s {
		if v != s[0] {
			return false
		}
	}
	return true
}
