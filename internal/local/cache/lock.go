package cache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// ErrLocked says another process (or another holder in this one) has the lock.
var ErrLocked = errors.New("locked by another process")

// lockPoll is how often Lock retries: a blocking flock cannot be interrupted, so Lock polls a
// non-blocking one to let ctx cancel the wait.
const lockPoll = 100 * time.Millisecond

// TryLock takes an exclusive flock on path (created if missing) without waiting; the error
// wraps ErrLocked if someone else holds it. A flock dies with its process, so a crashed holder
// never leaves the lock taken.
func TryLock(path string) (unlock func(), err error) {
	f, err := openLock(path)
	if err != nil {
		return nil, err
	}
	if err := flock(f, path); err != nil {
		f.Close()
		return nil, err
	}
	return func() { release(f) }, nil
}

// Lock waits for an exclusive flock on path until ctx is done. waiting, if not nil, is called
// once when the lock is found taken, so a caller can say what it waits for.
func Lock(ctx context.Context, path string, waiting func()) (unlock func(), err error) {
	f, err := openLock(path)
	if err != nil {
		return nil, err
	}
	for {
		err := flock(f, path)
		if err == nil {
			return func() { release(f) }, nil
		}
		if !errors.Is(err, ErrLocked) {
			f.Close()
			return nil, err
		}
		if waiting != nil {
			waiting()
			waiting = nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for lock %s: %w", path, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
}

func openLock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	return f, nil
}

// flock tries once, without blocking.
func flock(f *os.File, path string) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return fmt.Errorf("lock %s: %w", path, ErrLocked)
	}
	if err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	return nil
}

func release(f *os.File) {
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	f.Close()
}
