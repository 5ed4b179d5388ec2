// Package lifecycle tracks where a daemon (collector, ingester, detector) stands between New and
// Stop, for the readiness that `packetlake` serves on /healthz.
package lifecycle

import (
	"errors"
	"sync/atomic"
)

// Phase is a daemon's place in New → Start → Stop. The zero value is "not started". Safe for
// concurrent use: /healthz reads it while Start and Stop move it.
type Phase struct{ p atomic.Int32 }

const (
	notStarted int32 = iota
	running
	stopping
	stopped
)

// SetRunning marks a Start that succeeded.
func (ph *Phase) SetRunning() { ph.p.Store(running) }

// SetStopping marks the beginning of Stop.
func (ph *Phase) SetStopping() { ph.p.Store(stopping) }

// SetStopped marks the end of Stop.
func (ph *Phase) SetStopped() { ph.p.Store(stopped) }

// Ready is nil while running, else why not.
func (ph *Phase) Ready() error {
	switch ph.p.Load() {
	case running:
		return nil
	case stopping:
		return errors.New("stopping")
	case stopped:
		return errors.New("stopped")
	}
	return errors.New("not started")
}
