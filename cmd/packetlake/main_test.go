package main

import (
	"os"
	"testing"

	"github.com/packetlake/packetlake/internal/testkit/testinfra"
)

// TestMain removes the binary TestEveryHelp built (testinfra.Binary).
func TestMain(m *testing.M) {
	code := m.Run()
	testinfra.RemoveBinary()
	os.Exit(code)
}
