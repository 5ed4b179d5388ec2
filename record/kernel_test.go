package record

import (
	"testing"

	"github.com/packetlake/packetlake/schema"
)

// bpf sizes its batches by schema.KernelRecordSize and never imports record: the generated size
// here must be the same number.
func TestKernelRecordSizeIsSchemas(t *testing.T) {
	if KernelRecordSize != schema.KernelRecordSize || SnippetMax != schema.SnippetMax {
		t.Errorf("record: pl_record %d bytes, snippet max %d; schema: %d, %d (run make generate)",
			KernelRecordSize, SnippetMax, schema.KernelRecordSize, schema.SnippetMax)
	}
}
