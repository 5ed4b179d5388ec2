package bpf

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedObjectIsCurrent rebuilds the object with the go:generate line of gen.go in a
// scratch directory and requires the committed files to be byte-for-byte the same: the C, the
// generated pl_record.h and the object cannot drift apart, and the build does not depend on
// where the checkout lives. Needs clang and llvm-strip (Debian clang 14).
func TestGeneratedObjectIsCurrent(t *testing.T) {
	args := generateArgs(t)
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "bpf2go")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/cilium/ebpf/cmd/bpf2go").CombinedOutput(); err != nil {
		t.Fatalf("build bpf2go: %v\n%s", err, out)
	}
	src := filepath.Join(tmp, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	inputs, _ := filepath.Glob("*.[ch]")
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
	for _, f := range []string{"pl_bpfel.o", "pl_bpfel.go"} {
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
}

// generateArgs returns bpf2go's arguments from gen.go's go:generate line.
func generateArgs(t *testing.T) []string {
	b, err := os.ReadFile("gen.go")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "//go:generate go tool bpf2go "); ok {
			return splitQuoted(rest)
		}
	}
	t.Fatal("no go:generate line for bpf2go in gen.go")
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
