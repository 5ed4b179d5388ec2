package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/packetlake/packetlake/internal/testkit/testinfra"
)

// TestEveryHelp: `packetlake X --help` and `X -h` print X's usage and exit 0 for every
// subcommand, run as a user would run them (config --help used to open a file named --help).
func TestEveryHelp(t *testing.T) {
	bin, err := testinfra.Binary()
	if err != nil {
		t.Fatal(err)
	}
	if len(subcommands) < 10 {
		t.Fatalf("only %d subcommands registered", len(subcommands))
	}
	for name := range subcommands {
		for _, h := range []string{"--help", "-h"} {
			out, err := exec.Command(bin, name, h).CombinedOutput()
			if err != nil {
				t.Errorf("packetlake %s %s: %v\n%s", name, h, err, out)
				continue
			}
			if !strings.Contains(string(out), "Usage: packetlake "+name) {
				t.Errorf("packetlake %s %s printed no usage line:\n%s", name, h, out)
			}
		}
	}
	// The subcommand's help also wins over a required argument missing.
	if out, err := exec.Command(bin, "config", "check", "--help").CombinedOutput(); err != nil || !strings.Contains(string(out), "Usage: packetlake config check FILE") {
		t.Errorf("config check --help: %v\n%s", err, out)
	}
}
