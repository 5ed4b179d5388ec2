package l7

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/packetlake/packetlake/schema"
)

// TestReasonsMatchSchema: the reasons are exactly schema.ParseErrors' user-space names (codes 64
// and up), so the decoder can store Reason() as is.
func TestReasonsMatchSchema(t *testing.T) {
	ours := []string{}
	for _, e := range []Error{ErrDNSTruncated, ErrDNSBadName, ErrTLSTruncated, ErrTLSBadRecord, ErrHTTPTruncated, ErrHTTPBadRequest, ErrQUICTruncated, ErrQUICBadPacket} {
		ours = append(ours, e.Reason())
	}
	var want []string
	for _, code := range slices.Sorted(maps.Keys(schema.ParseErrors)) {
		if code >= 64 {
			want = append(want, schema.ParseErrors[code])
		}
	}
	slices.Sort(ours)
	slices.Sort(want)
	if !slices.Equal(ours, want) {
		t.Errorf("reasons %v, schema.ParseErrors from 64 has %v", ours, want)
	}

	wrapped := fmt.Errorf("frame 3: %w", ErrTLSTruncated)
	var r interface{ Reason() string }
	if !errors.As(wrapped, &r) || r.Reason() != "tls_truncated" || !errors.Is(wrapped, ErrTLSTruncated) {
		t.Errorf("wrapped error lost its reason: %v", wrapped)
	}
}
