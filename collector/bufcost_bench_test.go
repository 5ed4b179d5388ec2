package collector

import (
	"fmt"
	"sync"
	"testing"
)

// Side by side, the ways the producer can hold a copy of a frame while Kafka has it, and what
// each costs: CPU per frame (ns/op, allocations) and the memory it really holds (held-B/frame,
// the buffer's capacity, which MaxBufferedBytes must charge). 64 frames are held at a time, as
// frames in flight are; the oldest is released as each new one is copied.
//
//	go test ./collector -run '^$' -bench FrameCopy -benchmem
func BenchmarkFrameCopy(b *testing.B) {
	const frameMax = 256 << 10
	strategies := []struct {
		name string
		new  func() frameCopier
	}{
		{"pool-full-size", func() frameCopier { return newFullPool(frameMax) }},
		{"right-sized", func() frameCopier { return rightSized{} }},
		{"size-classes", func() frameCopier { return newFrameBufs(frameMax) }},
	}
	for _, size := range []int{600, 5 << 10, 64 << 10, frameMax} {
		frame := make([]byte, size)
		for _, s := range strategies {
			b.Run(fmt.Sprintf("frame=%d/%s", size, s.name), func(b *testing.B) {
				cp := s.new()
				var held [64]*[]byte
				var charged int
				b.ReportAllocs()
				for i := range b.N {
					slot := i % len(held)
					if held[slot] != nil {
						cp.release(held[slot])
					}
					held[slot] = cp.copy(frame)
					charged = cap(*held[slot])
				}
				b.ReportMetric(float64(charged), "held-B/frame")
			})
		}
	}
}

type frameCopier interface {
	copy(frame []byte) *[]byte
	release(*[]byte)
}

// fullPool is the producer before issue 13: every copy in a FrameMaxBytes buffer from one pool.
type fullPool struct{ p sync.Pool }

func newFullPool(max int) *fullPool {
	return &fullPool{p: sync.Pool{New: func() any { b := make([]byte, 0, max); return &b }}}
}
func (f *fullPool) copy(frame []byte) *[]byte {
	bp := f.p.Get().(*[]byte)
	*bp = append((*bp)[:0], frame...)
	return bp
}
func (f *fullPool) release(bp *[]byte) { f.p.Put(bp) }

// rightSized allocates each copy at its size and leaves it to the garbage collector.
type rightSized struct{}

func (rightSized) copy(frame []byte) *[]byte {
	b := append([]byte(nil), frame...)
	return &b
}
func (rightSized) release(*[]byte) {}

// TestFrameBufs: a copy's buffer has the capacity capFor charges, at most twice the frame (or
// minFrameBuf), and comes back from the pool of its class.
func TestFrameBufs(t *testing.T) {
	const limit = 300 << 10 // not a power of two: the last class is the limit itself
	f := newFrameBufs(limit)
	for _, n := range []int{1, 511, 512, 513, 5000, 256 << 10, 256<<10 + 1, limit, limit + 1} {
		frame := make([]byte, n)
		bp := f.copy(frame)
		if len(*bp) != n || cap(*bp) != f.capFor(n) || cap(*bp) > max(2*n, minFrameBuf) {
			t.Errorf("frame of %d: buffer len %d cap %d, capFor %d", n, len(*bp), cap(*bp), f.capFor(n))
		}
		f.release(bp)
	}
}
