// Package testpcaps finds the real captures tests replay: ../shared/pcaps beside the repository
// (where CI puts shared/), or $PACKETLAKE_PCAPS. A missing directory fails loudly: the tests
// that need captures must never pass without them.
package testpcaps

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

var (
	once sync.Once
	dir  string
	err  error
)

// Dir returns the captures directory (holding tcpdump/ and ja4/), or panics with the reason
// and the fix: it is called from test code, where a panic is a failed test.
func Dir() string {
	once.Do(func() { dir, err = find() })
	if err != nil {
		panic(err)
	}
	return dir
}

// Path returns a capture's path, e.g. Path("tcpdump/dns_udp.pcap").
func Path(rel string) string { return filepath.Join(Dir(), rel) }

func find() (string, error) {
	if d := os.Getenv("PACKETLAKE_PCAPS"); d != "" {
		return check(d)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return check(filepath.Join(filepath.Dir(d), "shared", "pcaps"))
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("testpcaps: no go.mod above %s", wd)
		}
	}
}

func check(d string) (string, error) {
	if _, err := os.Stat(filepath.Join(d, "tcpdump")); err != nil {
		return "", fmt.Errorf("testpcaps: the real captures are missing (%v): tests expect shared/pcaps beside the repository, or set PACKETLAKE_PCAPS", err)
	}
	return d, nil
}
