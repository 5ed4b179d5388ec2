package record

import (
	"reflect"
	"testing"

	"github.com/packetlake/packetlake/schema"
)

// Packet must have exactly the columns of schema.Columns, in order.
func TestPacketMatchesSchema(t *testing.T) {
	typ := reflect.TypeOf(Packet{})
	if typ.NumField() != len(schema.Columns) {
		t.Fatalf("Packet has %d fields, schema has %d columns", typ.NumField(), len(schema.Columns))
	}
	for i, c := range schema.Columns {
		if tag := typ.Field(i).Tag.Get("col"); tag != c.Name {
			t.Errorf("Packet field %d (%s) is tagged %q, schema column %d is %q", i, typ.Field(i).Name, tag, i, c.Name)
		}
	}
}
