package bpf

// The object is committed (pl_bpfel.o and pl_bpfel.go) so `go build` needs no clang. Only the
// little-endian object is built: the decoder reads pl_record as little-endian (record/kernel.go).
// Run `go generate ./bpf/` after changing the C or schema/columns.go (which regenerates
// pl_record.h); with the same clang 14 and Debian headers the output is byte-for-byte the same.
//
// -mcpu=v3: bpf2go's default v1 fails the verifier (INFRA.md). The multiarch -I is where Debian
// keeps asm/types.h. DWARF is stripped (bpf2go's default), BTF is kept: struct pl_record is in it
// as a member of pl_scratch_map's value.
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -mcpu=v3 -I/usr/include/x86_64-linux-gnu" -target bpfel -type pl_flow -type pl_flow_key -type pl_flow4_key -type pl_flow4_head -type pl_flow6_head pl pl.c
