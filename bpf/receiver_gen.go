package bpf

// receiver.c is its own object (receiver_bpfel.o, receiver_bpfel.go, committed like pl's): the
// optional receiving-process tracer, loaded only with collect --receivers (receiver.go).
// -D__TARGET_ARCH_x86: bpf_tracing.h's BPF_PROG wants an architecture; only x86-64 is built.
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -mcpu=v3 -D__TARGET_ARCH_x86 -I/usr/include/x86_64-linux-gnu" -target bpfel receiver receiver.c
