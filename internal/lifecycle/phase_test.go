package lifecycle

import "testing"

func TestPhase(t *testing.T) {
	var ph Phase
	for _, step := range []struct {
		set  func()
		want string
	}{
		{func() {}, "not started"},
		{ph.SetRunning, ""},
		{ph.SetStopping, "stopping"},
		{ph.SetStopped, "stopped"},
	} {
		step.set()
		got := ""
		if err := ph.Ready(); err != nil {
			got = err.Error()
		}
		if got != step.want {
			t.Errorf("Ready() = %q, want %q", got, step.want)
		}
	}
}
