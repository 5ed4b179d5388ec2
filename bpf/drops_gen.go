package bpf

// The drop-reason program is its own object (drops.c), loaded and attached apart from the packet
// observer: it is a tracing program with no packet path, and keeping it out of pl.c keeps the
// parser's object, its verifier budget and its benchmarks unchanged. Flags as in gen.go.
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -mcpu=v3 -I/usr/include/x86_64-linux-gnu" -target bpfel -type pl_drop_key -type pl_drop_count -type pl_drop_iface drops drops.c
