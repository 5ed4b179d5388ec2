// Package gen is the traffic generator of the live line-rate benchmark (bench/linerate_live_test.go):
// a tiny XDP program (gen.c) that BPF_PROG_TEST_RUN runs in live-frames mode, so every run
// transmits a frame out of one end of a veth pair, varied over a pool of flows.
package gen

// Built like bpf/gen.go (same clang flags); the object is committed, `make generate` rebuilds it
// and `make check-generated` checks it.
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -mcpu=v3 -I/usr/include/x86_64-linux-gnu" -target bpfel gen gen.c
