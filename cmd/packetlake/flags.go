package main

import (
	"fmt"
	"strconv"
	"strings"
)

// listFlag is a comma-separated list flag (--brokers a:9092,b:9092). Setting it replaces the
// list, so the command line overrides the environment, which overrides the config file.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	*l = nil
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// bytesFlag is a size in bytes that also takes binary suffixes: 65536, 64K, 64M, 1G (KiB, MiB,
// GiB accepted too), because ring and buffer sizes are powers of two nobody types in full.
type bytesFlag int

func (b *bytesFlag) String() string { return strconv.Itoa(int(*b)) }

func (b *bytesFlag) Set(s string) error {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B"), "I")
	mult := 1
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			mult, t = 1<<10, t[:n-1]
		case 'M':
			mult, t = 1<<20, t[:n-1]
		case 'G':
			mult, t = 1<<30, t[:n-1]
		}
	}
	v, err := strconv.Atoi(t)
	if err != nil || v < 0 {
		return fmt.Errorf("%q is not a size (e.g. 65536, 64K, 64M)", s)
	}
	*b = bytesFlag(v * mult)
	return nil
}
