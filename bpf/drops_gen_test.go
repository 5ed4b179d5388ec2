package bpf

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedDropsObjectIsCurrent is TestGeneratedObjectIsCurrent for the drop-reason program:
// drops_gen.go's go:generate line, run in a scratch directory, must give the committed
// drops_bpfel.o and drops_bpfel.go byte for byte.
func TestGeneratedDropsObjectIsCurrent(t *testing.T) {
	b, err := os.ReadFile("drops_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "//go:generate go tool bpf2go "); ok {
			args = splitQuoted(rest)
		}
	}
	if args == nil {
		t.Fatal("no go:generate line for bpf2go in drops_gen.go")
	}
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
	for _, f := range []string{"drops_bpfel.o", "drops_bpfel.go"} {
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
