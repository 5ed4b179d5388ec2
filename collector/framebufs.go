package collector

import (
	"math/bits"
	"sync"
)

// frameBufs holds the producer's copies of frames while Kafka has them, in buffers pooled by
// power-of-two capacity from minFrameBuf up to FrameMaxBytes. A copy's buffer is at most twice
// the frame, so charging its capacity to MaxBufferedBytes counts the memory really held while
// a quiet interface's small frames still fit the cap by the thousand. (One pool of
// FrameMaxBytes buffers held 256 KiB for a 5 KB frame: the cap counted 1/50 of the memory.
// Right-sized allocations hold least but cost 3-12x the CPU per frame; BENCH.md.) Idle buffers
// are the pools', which the garbage collector empties within two cycles.
type frameBufs struct {
	max   int
	pools []sync.Pool // pools[i]: buffers of capacity min(minFrameBuf<<i, max)
}

// minFrameBuf is the smallest class: a frame holds a header and at least one record.
const minFrameBuf = 512

func newFrameBufs(max int) *frameBufs {
	return &frameBufs{max: max, pools: make([]sync.Pool, class(max)+1)}
}

// class is the pool index of a frame of n bytes.
func class(n int) int {
	return max(bits.Len(uint(n-1))-bits.Len(minFrameBuf-1), 0)
}

// capFor is the capacity of the buffer a frame of n bytes is copied into. (A frame is at most
// FrameMaxBytes but for a single record bigger than that, which gets a buffer of its own size.)
func (f *frameBufs) capFor(n int) int {
	if n > f.max {
		return n
	}
	return min(minFrameBuf<<class(n), f.max)
}

// copy returns frame copied into a pooled buffer of capFor(len(frame)).
func (f *frameBufs) copy(frame []byte) *[]byte {
	if len(frame) > f.max {
		b := append(make([]byte, 0, len(frame)), frame...)
		return &b
	}
	i := class(len(frame))
	bp, _ := f.pools[i].Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 0, f.capFor(len(frame)))
		bp = &b
	}
	*bp = append((*bp)[:0], frame...)
	return bp
}

// release returns a buffer from copy once the client is done with it.
func (f *frameBufs) release(bp *[]byte) {
	if cap(*bp) <= f.max {
		f.pools[class(cap(*bp))].Put(bp)
	}
}
