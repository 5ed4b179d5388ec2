package bpf

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedObjectIsCurrent rebuilds each object (the parser pl, the drop-reason program
// drops, the receiver tracer receiver) with the go:generate line of its gen file in a scratch
// directory and requires the committed files to be byte-for-byte the same: the C, the generated
// pl_record.h and the objects cannot drift apart, and the build does not depend on where the
// checkout lives. Needs clang and llvm-strip (Debian clang 14).
func TestGeneratedObjectIsCurrent(t *testing.T) {
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "bpf2go")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/cilium/ebpf/cmd/bpf2go").CombinedOutput(); err != nil {
		t.Fatalf("build bpf2go: %v\n%s", err, out)
	}
	inputs, _ := filepath.Glob("*.[ch]")
	for _, obj := range []struct{ gen, name string }{{"gen.go", "pl"}, {"drops_gen.go", "drops"}, {"receiver_gen.go", "receiver"}} {
		t.Run(obj.name, func(t *testing.T) {
			args := generateArgs(t, obj.gen)
			src := t.TempDir()
			for _, f := range inputs {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(src, f), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(bin, args...)
			cmd.Dir = src
			cmd.Env = append(os.Environ(), "GOPACKAGE=bpf")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("bpf2go %s: %v\n%s (needs clang and llvm-strip)", strings.Join(args, " "), err, out)
			}
			for _, f := range []string{obj.name + "_bpfel.o", obj.name + "_bpfel.go"} {
				want, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				got, err := os.ReadFile(filepath.Join(src, f))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from a fresh build: run `go generate ./bpf/`", f)
				}
			}
		})
	}
}

// generateArgs returns bpf2go's arguments from the go:generate line of the file gen.
func generateArgs(t *testing.T, gen string) []string {
	b, err := os.ReadFile(gen)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "//go:generate go tool bpf2go "); ok {
			return splitQuoted(rest)
		}
	}
	t.Fatalf("no go:generate line for bpf2go in %s", gen)
	return nil
}

// splitQuoted splits on spaces outside double quotes, as go generate does.
func splitQuoted(s string) []string {
	var out []string
	var cur strings.Builder
	quoted, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, have = !quoted, true
		case r == ' ' && !quoted:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}
