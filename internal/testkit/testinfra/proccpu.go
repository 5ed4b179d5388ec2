package testinfra

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ProcCPU is a process's user and system CPU seconds apart, from /proc/<pid>/stat ("self" for
// the test process): the benchmarks' measure of what ClickHouse, Kafka and the ingester spent.
func ProcCPU(pid string) (user, sys float64, err error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("cpu of %s: %w", pid, err)
	}
	user, sys, err = parseStat(b)
	if err != nil {
		return 0, 0, fmt.Errorf("cpu of %s: %w", pid, err)
	}
	return user, sys, nil
}

// parseStat reads utime and stime (USER_HZ ticks) of a /proc/<pid>/stat line.
func parseStat(b []byte) (user, sys float64, err error) {
	// The command name may hold spaces: fields count from after its closing parenthesis.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 > len(b) {
		return 0, 0, fmt.Errorf("unreadable stat %q", b)
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("stat has %d fields after the name", len(f))
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("utime %q, stime %q", f[11], f[12])
	}
	return ut / 100, st / 100, nil // USER_HZ
}
