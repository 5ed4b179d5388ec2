package schema

import "fmt"

// CSize is the size in bytes of a C scalar type used in pl_record.
func CSize(ctype string) int {
	switch ctype {
	case "__u8":
		return 1
	case "__u16":
		return 2
	case "__u32":
		return 4
	case "__u64":
		return 8
	}
	panic("schema: unknown C type " + ctype)
}

// Member is a pl_record member with its place in the struct.
type Member struct {
	CField
	Offset int
	Size   int // total bytes (element size × array length)
}

// Layout places the members of pl_record with C's natural alignment and returns them with the
// struct's size. It fails if the order in KernelRecord would make the compiler insert padding:
// padding would be bytes the BPF program never writes, read by the decoder as whatever was there.
func Layout() ([]Member, int, error) {
	return layout("pl_record", KernelRecord, KernelRecordSize)
}

// TunnelLayout is Layout for struct pl_record_tunnel (KernelTunnel). Its size must be a multiple
// of 8 too: the snippet after it, and the next record of a batch, keep the base's alignment.
func TunnelLayout() ([]Member, int, error) {
	m, size, err := layout("pl_record_tunnel", KernelTunnel, KernelTunnelSize)
	if err == nil && size%8 != 0 {
		err = fmt.Errorf("pl_record_tunnel is %d bytes, not a multiple of 8", size)
	}
	return m, size, err
}

func layout(name string, fields []CField, want int) ([]Member, int, error) {
	var out []Member
	off, maxAlign := 0, 1
	for _, f := range fields {
		elem := CSize(f.CType)
		n := 1
		if f.Array > 0 {
			n = f.Array
		}
		if off%elem != 0 {
			return nil, 0, fmt.Errorf("%s.%s at offset %d is not %d-aligned: reorder its members", name, f.Name, off, elem)
		}
		maxAlign = max(maxAlign, elem)
		out = append(out, Member{CField: f, Offset: off, Size: elem * n})
		off += elem * n
	}
	if off%maxAlign != 0 {
		return nil, 0, fmt.Errorf("%s size %d is not a multiple of its alignment %d: tail padding", name, off, maxAlign)
	}
	if off != want {
		return nil, 0, fmt.Errorf("%s members add up to %d bytes, the schema says %d: update one or the other", name, off, want)
	}
	return out, off, nil
}

// ColumnOf returns the column a member feeds, or "" if none.
func (f CField) ColumnOf() string {
	switch f.Column {
	case "":
		return f.Name
	case "-":
		return ""
	}
	return f.Column
}
