package chlocal

import (
	"errors"
	"fmt"
	"testing"
)

// TestLostPickedPort: Spawn starts a child again only when the port the child lost was one it
// picked itself (0 in SpawnConfig), recognised from PortInUseError's own text in the child's
// stderr; a given port that is taken, or any other failure, is returned at once.
func TestLostPickedPort(t *testing.T) {
	exited := func(kind string, port int) error { // as Spawn wraps the child's stderr
		return fmt.Errorf("clickhouse-local on /d exited before ready (exit status 1): Code: 210. DB::Exception: Listen failed\npacketlake clickhouse-local: %v", &PortInUseError{Kind: kind, Port: port})
	}
	for _, c := range []struct {
		name      string
		tcp, http int
		err       error
		want      bool
	}{
		{"picked http lost", 0, 0, exited("http", 37395), true},
		{"picked tcp lost", 0, 0, exited("tcp", 41000), true},
		{"given http taken", 0, 8123, exited("http", 8123), false},
		{"given tcp taken", 9000, 0, exited("tcp", 9000), false},
		{"other failure", 0, 0, errors.New("clickhouse-local on /d exited before ready: data dir /d is in use by another ClickHouse (pid 7)"), false},
	} {
		if got := lostPickedPort(SpawnConfig{TCPPort: c.tcp, HTTPPort: c.http}, c.err); got != c.want {
			t.Errorf("%s: lostPickedPort = %v, want %v", c.name, got, c.want)
		}
	}
}
