package cache

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// A held lock refuses TryLock, keeps Lock waiting (calling waiting once) until it is released,
// and a cancelled wait gives up.
func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := TryLock(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TryLock(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("second TryLock: %v, want ErrLocked", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*lockPoll)
	defer cancel()
	if _, err := Lock(ctx, path, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock on a held lock past its deadline: %v", err)
	}

	waited := 0
	got := make(chan error, 1)
	go func() {
		u, err := Lock(context.Background(), path, func() { waited++ })
		if err == nil {
			u()
		}
		got <- err
	}()
	time.Sleep(3 * lockPoll)
	select {
	case err := <-got:
		t.Fatalf("Lock returned while the lock was held: %v", err)
	default:
	}
	unlock()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if waited != 1 {
		t.Errorf("waiting called %d times, want 1", waited)
	}
}
