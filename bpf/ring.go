package bpf

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// ErrFlushed is what Ring.Next returns once it has handed out every sample that was in the ring
// when Ring.Flush was called.
var ErrFlushed = errors.New("ring flushed")

// Ring reads the ring buffer Events in place and lets the caller say when a sample is consumed.
// cilium/ebpf's ringbuf.Reader moves the consumer position as it copies a sample out; a pinned
// ring outlives the collector process, so the collector must first record what it made of a
// sample (its seq numbers, in the pinned run page) and only then give the space back to the
// kernel. A process killed in between leaves the sample in the ring for the next one to read
// again under the same seq numbers, instead of losing it uncounted.
//
// One goroutine calls Next and Commit; Flush and AvailableBytes may be called from any.
type Ring struct {
	mu       sync.Mutex // Close vs Next
	consPage []byte     // consumer position, the one page user space writes
	dataMap  []byte     // producer position page, then the data pages mapped twice (a sample that wraps is contiguous)
	cons     *uint64
	prod     *uint64
	data     []byte
	mask     uint64
	read     uint64 // position of the next sample to hand out (>= *cons: handed out, not committed)
	epfd     int
	flushFd  int
	closeFd  int
	pending  error // ErrFlushed or deadline, returned once the ring is empty
	deadline time.Time
	events   [4]unix.EpollEvent
}

// NewRing maps m (a BPF_MAP_TYPE_RINGBUF: Objects.Events) for reading.
func NewRing(m *ebpf.Map) (_ *Ring, err error) {
	if m.Type() != ebpf.RingBuf {
		return nil, fmt.Errorf("ring: map %s is a %s, not a ring buffer", m, m.Type())
	}
	size := int(m.MaxEntries())
	page := os.Getpagesize()
	r := &Ring{epfd: -1, flushFd: -1, closeFd: -1, mask: uint64(size - 1)}
	defer func() {
		if err != nil {
			r.release()
		}
	}()
	if r.consPage, err = unix.Mmap(m.FD(), 0, page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
		return nil, fmt.Errorf("ring: mmap consumer page: %w", err)
	}
	if r.dataMap, err = unix.Mmap(m.FD(), int64(page), page+2*size, unix.PROT_READ, unix.MAP_SHARED); err != nil {
		return nil, fmt.Errorf("ring: mmap data pages: %w", err)
	}
	r.cons = (*uint64)(unsafe.Pointer(&r.consPage[0]))
	r.prod = (*uint64)(unsafe.Pointer(&r.dataMap[0]))
	r.data = r.dataMap[page:]
	r.read = atomic.LoadUint64(r.cons)
	if r.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("ring: epoll: %w", err)
	}
	if r.flushFd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, fmt.Errorf("ring: eventfd: %w", err)
	}
	if r.closeFd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, fmt.Errorf("ring: eventfd: %w", err)
	}
	for _, fd := range []int{m.FD(), r.flushFd, r.closeFd} {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
		if err := unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			return nil, fmt.Errorf("ring: epoll add: %w", err)
		}
	}
	return r, nil
}

// Size is the ring's data size in bytes.
func (r *Ring) Size() int { return int(r.mask + 1) }

// Consumed is the consumer position: bytes the kernel may reuse, counted since the ring was
// created (it only grows; a pinned ring keeps it across processes).
func (r *Ring) Consumed() uint64 { return atomic.LoadUint64(r.cons) }

// AvailableBytes is what the kernel has written and no Commit has consumed yet.
func (r *Ring) AvailableBytes() uint64 { return atomic.LoadUint64(r.prod) - atomic.LoadUint64(r.cons) }

// SetDeadline bounds how long Next waits for a sample; zero waits for ever.
func (r *Ring) SetDeadline(t time.Time) { r.deadline = t }

// Next returns the next sample and the position just after it. The sample aliases the ring:
// it stays valid until Commit gives its space back. Without a Commit, the next call returns
// the following sample (the caller may read ahead), and a new Ring starts again from the last
// Commit. Errors: os.ErrDeadlineExceeded when the ring stays empty past the deadline (at once if
// samples handed out are not committed yet), ErrFlushed once the ring was emptied after Flush,
// os.ErrClosed after Close.
func (r *Ring) Next() (sample []byte, next uint64, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.data == nil {
		return nil, 0, fmt.Errorf("ring: %w", os.ErrClosed)
	}
	for {
		s, n, err := r.sample()
		if err == nil || !errors.Is(err, errEmpty) {
			return s, n, err
		}
		if r.pending != nil {
			err, r.pending = r.pending, nil
			return nil, 0, err
		}
		if r.read != atomic.LoadUint64(r.cons) {
			// Samples handed out are not committed: the ring polls readable until they are, so
			// waiting would spin. Nothing new is what the deadline would say.
			return nil, 0, os.ErrDeadlineExceeded
		}
		if err := r.wait(); err != nil {
			if !errors.Is(err, ErrFlushed) && !errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, 0, err
			}
			// Read what is there first: the producers write without waking the reader below the
			// wake-up threshold.
			r.pending = err
		}
	}
}

var errEmpty = errors.New("ring empty")

// Ring buffer header bits (kernel/bpf/ringbuf.c).
const (
	ringBusyBit    = 1 << 31
	ringDiscardBit = 1 << 30
	ringHdrSize    = 8
)

// sample reads the header at r.read: the sample it starts, skipping discarded ones.
func (r *Ring) sample() ([]byte, uint64, error) {
	for {
		prod := atomic.LoadUint64(r.prod)
		if prod == r.read {
			return nil, 0, errEmpty
		}
		if prod-r.read < ringHdrSize {
			return nil, 0, fmt.Errorf("ring: read header: %w", io.ErrUnexpectedEOF)
		}
		// Loaded atomically: ordered after the kernel's xchg that clears the busy bit, so the data
		// it covers is visible.
		hdr := atomic.LoadUint32((*uint32)(unsafe.Pointer(&r.data[r.read&r.mask])))
		if hdr&ringBusyBit != 0 {
			continue // reserved, not committed yet: a producer is writing it right now
		}
		n := uint64(hdr &^ (ringBusyBit | ringDiscardBit))
		start := r.read + ringHdrSize
		next := start + (n+7)&^7
		if next > prod {
			return nil, 0, fmt.Errorf("ring: read sample data: %w", io.ErrUnexpectedEOF)
		}
		r.read = next
		if hdr&ringDiscardBit != 0 {
			continue
		}
		off := start & r.mask
		return r.data[off : off+n : off+n], next, nil
	}
}

// Commit gives the ring space before pos (a position Next returned) back to the kernel.
func (r *Ring) Commit(pos uint64) { atomic.StoreUint64(r.cons, pos) }

// Resume moves the consumer position forward to pos, a position a previous reader of this ring
// recorded but may not have committed before it died. Positions behind the current one are
// refused: that space may already hold new samples.
func (r *Ring) Resume(pos uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cons, prod := atomic.LoadUint64(r.cons), atomic.LoadUint64(r.prod)
	if pos < cons || pos > prod {
		return fmt.Errorf("ring: resume at %d: outside the unread bytes [%d, %d]", pos, cons, prod)
	}
	atomic.StoreUint64(r.cons, pos)
	r.read = pos
	return nil
}

// wait blocks until the ring may have data, Flush or Close was called, or the deadline passed.
func (r *Ring) wait() error {
	for {
		timeout := -1
		if !r.deadline.IsZero() {
			timeout = int(max(0, min(time.Until(r.deadline).Milliseconds(), math.MaxInt32)))
		}
		n, err := unix.EpollWait(r.epfd, r.events[:], timeout)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("ring: epoll wait: %w", err)
		}
		if n == 0 {
			return os.ErrDeadlineExceeded
		}
		var flushed bool
		for _, ev := range r.events[:n] {
			switch int(ev.Fd) {
			case r.closeFd:
				return fmt.Errorf("ring: %w", os.ErrClosed)
			case r.flushFd:
				var b [8]byte
				unix.Read(r.flushFd, b[:])
				flushed = true
			}
		}
		if flushed {
			return ErrFlushed
		}
		return nil
	}
}

// Flush makes Next return ErrFlushed after the samples the ring holds now (and any written
// before Next finds it empty).
func (r *Ring) Flush() error { return wake(r.flushFd) }

func wake(fd int) error {
	var one [8]byte
	one[0] = 1 // little-endian 1; eventfd counters are host-endian, and so is every target here
	if _, err := unix.Write(fd, one[:]); err != nil {
		return fmt.Errorf("ring: wake reader: %w", err)
	}
	return nil
}

// Close interrupts a waiting Next and unmaps the ring. Samples Next returned must no longer be
// used. The ring buffer itself (and what it holds) lives on while the map is pinned or open.
func (r *Ring) Close() error {
	if r.closeFd >= 0 {
		wake(r.closeFd)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.release()
	return nil
}

func (r *Ring) release() {
	if r.consPage != nil {
		unix.Munmap(r.consPage)
		r.consPage = nil
	}
	if r.dataMap != nil {
		unix.Munmap(r.dataMap)
		r.dataMap = nil
	}
	r.data = nil
	for _, fd := range []*int{&r.epfd, &r.flushFd, &r.closeFd} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}
