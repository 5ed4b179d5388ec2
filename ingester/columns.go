package ingester

import (
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/packetlake/packetlake/record"
	"github.com/packetlake/packetlake/schema"
)

// colKind is how one column travels from record.Packet to a writer. Both writers switch on it
// once per batch, not per row.
type colKind uint8

const (
	kindTime   colKind = iota // DateTime64(9): int64 ns since the epoch, UTC
	kindString                // String and LowCardinality(String)
	kindUint8
	kindUint16
	kindUint32
	kindUint64
	kindIPv6 // [16]byte, network order
)

// packetColumn is one column of schema.Columns with where its value sits in record.Packet.
type packetColumn struct {
	Name   string
	CHType string
	Kind   colKind
	Offset uintptr // of the Packet field tagged `col:"Name"`: writers read it without reflection
}

// kindOf maps a ClickHouse type of schema.Columns to a kind and the Go type Packet must use for it.
func kindOf(chType string) (colKind, reflect.Type, error) {
	t := chType
	if inner, ok := strings.CutPrefix(chType, "LowCardinality("); ok {
		t = strings.TrimSuffix(inner, ")") // a dictionary encoding of the same values
	}
	switch t {
	case "DateTime64(9)":
		return kindTime, reflect.TypeFor[int64](), nil
	case "String":
		return kindString, reflect.TypeFor[string](), nil
	case "UInt8":
		return kindUint8, reflect.TypeFor[uint8](), nil
	case "UInt16":
		return kindUint16, reflect.TypeFor[uint16](), nil
	case "UInt32":
		return kindUint32, reflect.TypeFor[uint32](), nil
	case "UInt64":
		return kindUint64, reflect.TypeFor[uint64](), nil
	case "IPv6":
		return kindIPv6, reflect.TypeFor[[16]byte](), nil
	}
	return 0, nil, fmt.Errorf("ClickHouse type %s has no writer mapping: add it to ingester/columns.go", chType)
}

// packetColumns derives the writers' column list from schema.Columns and record.Packet, so a new
// column of a known type needs no change here. It fails if a column has no Packet field or the
// field's Go type does not carry the ClickHouse type.
var packetColumns = sync.OnceValues(func() ([]packetColumn, error) {
	fields := map[string]reflect.StructField{}
	pt := reflect.TypeFor[record.Packet]()
	for i := 0; i < pt.NumField(); i++ {
		f := pt.Field(i)
		if name := f.Tag.Get("col"); name != "" {
			fields[name] = f
		}
	}
	out := make([]packetColumn, 0, len(schema.Columns))
	for _, c := range schema.Columns {
		kind, goType, err := kindOf(c.CHType)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", c.Name, err)
		}
		f, ok := fields[c.Name]
		if !ok {
			return nil, fmt.Errorf("column %s: record.Packet has no field tagged col:%q", c.Name, c.Name)
		}
		if f.Type != goType {
			return nil, fmt.Errorf("column %s (%s): record.Packet.%s is %s, want %s", c.Name, c.CHType, f.Name, f.Type, goType)
		}
		out = append(out, packetColumn{Name: c.Name, CHType: c.CHType, Kind: kind, Offset: f.Offset})
	}
	return out, nil
})

// columnList is "ts, host, ..." for INSERT statements, in table order.
func columnList(cols []packetColumn) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}
