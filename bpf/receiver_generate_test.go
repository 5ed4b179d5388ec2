package bpf

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReceiverObjectIsCurrent is TestGeneratedObjectIsCurrent for receiver.c: the committed
// receiver_bpfel.o and .go equal a fresh build with receiver_gen.go's go:generate line.
func TestReceiverObjectIsCurrent(t *testing.T) {
	b, err := os.ReadFile("receiver_gen.go")
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
		t.Fatal("no go:generate line for bpf2go in receiver_gen.go")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "bpf2go")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/cilium/ebpf/cmd/bpf2go").CombinedOutput(); err != nil {
		t.Fatalf("build bpf2go: %v\n%s", err, out)
	}
	src, err := os.ReadFile("receiver.c")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "receiver.c"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOPACKAGE=bpf")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bpf2go %s: %v\n%s (needs clang and llvm-strip)", strings.Join(args, " "), err, out)
	}
	for _, f := range []string{"receiver_bpfel.o", "receiver_bpfel.go"} {
		want, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(tmp, f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from a fresh build: run `go generate ./bpf/`", f)
		}
	}
}
