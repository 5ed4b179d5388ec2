package testinfra

import "testing"

func TestParseStat(t *testing.T) {
	// A command name with a space and a parenthesis, as clickhouse-server's threads have.
	line := []byte("4242 (ch (srv) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 12 0 9 0 0\n")
	u, s, err := parseStat(line)
	if err != nil || u != 2.5 || s != 0.75 {
		t.Fatalf("parseStat = %v, %v, %v; want 2.5, 0.75", u, s, err)
	}
	for _, bad := range []string{"", "4242 no parenthesis", "4242 (x) S 1 2", "4242 (x) S 1 2 3 4 5 6 7 8 9 10 u v"} {
		if _, _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q): no error", bad)
		}
	}
	if _, _, err := ProcCPU("self"); err != nil {
		t.Errorf("ProcCPU(self): %v", err)
	}
	if _, _, err := ProcCPU("not-a-pid"); err == nil {
		t.Error("ProcCPU(not-a-pid): no error")
	}
}
