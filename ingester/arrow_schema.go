package ingester

import (
	"github.com/apache/arrow/go/v15/arrow"
)

// arrowType maps a column kind to the Arrow type ClickHouse's ArrowStream input converts into
// the column's type:
//   - DateTime64(9): timestamp[ns, tz=UTC] (ClickHouse reads the unit; the tz only labels it);
//   - IPv6: fixed_size_binary(16) in network order (what ClickHouse itself writes for IPv6);
//   - String and LowCardinality(String): utf8 (ClickHouse builds the dictionary itself);
//   - UIntN: uintN.
func arrowType(k colKind) arrow.DataType {
	switch k {
	case kindTime:
		return &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}
	case kindString:
		return arrow.BinaryTypes.String
	case kindUint8:
		return arrow.PrimitiveTypes.Uint8
	case kindUint16:
		return arrow.PrimitiveTypes.Uint16
	case kindUint32:
		return arrow.PrimitiveTypes.Uint32
	case kindUint64:
		return arrow.PrimitiveTypes.Uint64
	case kindIPv6:
		return &arrow.FixedSizeBinaryType{ByteWidth: 16}
	}
	panic("ingester: unmapped column kind")
}

// ArrowSchema is the Arrow schema of the packets table, derived from schema.Columns.
func ArrowSchema() (*arrow.Schema, error) {
	cols, err := packetColumns()
	if err != nil {
		return nil, err
	}
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c.Name, Type: arrowType(c.Kind)}
	}
	return arrow.NewSchema(fields, nil), nil
}
