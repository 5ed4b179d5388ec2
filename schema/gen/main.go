// Command gen writes the files derived from the record schema: bpf/pl_record.h (the C struct the
// BPF program fills) and record/kernel_gen.go (the Go decoder's offsets). Run by `make generate`;
// a test checks that the committed files are what it writes.
package main

import (
	"flag"
	"log"
	"os"
	"path/filepath"

	"github.com/packetlake/packetlake/schema"
)

func main() {
	root := flag.String("root", ".", "repository root")
	flag.Parse()
	files := map[string]func() ([]byte, error){
		"bpf/pl_record.h":      schema.GenerateCHeader,
		"record/kernel_gen.go": schema.GenerateGoDecoder,
	}
	for path, gen := range files {
		b, err := gen()
		if err != nil {
			log.Fatalf("generate %s: %v", path, err)
		}
		if err := os.WriteFile(filepath.Join(*root, path), b, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}
