package nettest

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// Exec runs a command inside network namespace ns (ip netns exec) and returns its combined
// output; the error includes that output.
func Exec(ctx context.Context, ns string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("in netns %s: %s %s: %w: %s", ns, name, strings.Join(args, " "), err, out)
	}
	return out, nil
}

// MustExec is Exec that fails the test on error.
func MustExec(t testing.TB, ns string, name string, args ...string) []byte {
	t.Helper()
	out, err := Exec(t.Context(), ns, name, args...)
	if err != nil {
		t.Fatalf("nettest: %v", err)
	}
	return out
}

// run executes a command in the current (root) namespace for setup, failing the test on error.
func run(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("nettest: %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// requireTools fails (never skips) when a command the test needs is missing.
func requireTools(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Fatalf("nettest: %q not found in PATH: this test needs it (Debian: apt-get install iproute2 tcpreplay)", n)
		}
	}
}
