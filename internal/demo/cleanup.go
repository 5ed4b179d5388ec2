package demo

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// cleanups is a LIFO stack of undo steps. Every resource is pushed the moment it exists (or, for
// namespaces, just before it is made, since a half-failed `ip netns add` can still leave one), so
// whatever point Run stops at — error, Ctrl-C, panic — unwinding the stack removes exactly what
// was made, newest first: the collector detaches before the namespaces go, the namespaces go
// before the brokers they were never tied to.
type cleanups struct {
	mu    sync.Mutex
	steps []cleanupStep
}

type cleanupStep struct {
	name string
	fn   func() error
}

// push registers fn to run at unwind time. fn must be safe to run after a partial failure and
// must bound its own waiting: unwinding runs after ctx is cancelled, so it gets no context.
func (c *cleanups) push(name string, fn func() error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.steps = append(c.steps, cleanupStep{name, fn})
}

// run pops and runs every step, newest first. A failing step does not stop the others: leaving
// a namespace behind because a broker refused to stop would be the worse outcome.
func (c *cleanups) run(log *slog.Logger) error {
	var errs []error
	for {
		c.mu.Lock()
		if len(c.steps) == 0 {
			c.mu.Unlock()
			return errors.Join(errs...)
		}
		s := c.steps[len(c.steps)-1]
		c.steps = c.steps[:len(c.steps)-1]
		c.mu.Unlock()

		start := time.Now()
		err := runStep(s)
		if err != nil {
			log.Warn("cleanup step failed", "step", s.name, "err", err)
			errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
			continue
		}
		log.Debug("cleanup step done", "step", s.name, "took", time.Since(start).Round(time.Millisecond))
	}
}

// runStep turns a panicking step into an error so the steps below it still run.
func runStep(s cleanupStep) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return s.fn()
}
