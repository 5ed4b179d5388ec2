package console

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/packetlake/packetlake/internal/suggest"
)

// Values of the filter language: prefixes and addresses in the packets table's IPv6 form, and
// the nearest column name for a misspelt one.

func parsePrefix(t token) (netip.Prefix, error) {
	if t.kind != "word" && t.kind != "string" {
		return netip.Prefix{}, &FilterError{t.pos, "expected a prefix such as 10.0.0.0/8"}
	}
	if pfx, err := netip.ParsePrefix(t.text); err == nil {
		return pfx, nil
	}
	if a, err := netip.ParseAddr(t.text); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.Prefix{}, &FilterError{t.pos, fmt.Sprintf("%q is not a prefix such as 10.0.0.0/8 or 2001:db8::/32", t.text)}
}

// mapped is an address as the packets table stores it: IPv4 as IPv4-mapped IPv6.
func mapped(a netip.Addr) netip.Addr { return netip.AddrFrom16(a.As16()) }

// lastAddr is the highest address of a prefix, in IPv6 form.
func lastAddr(p netip.Prefix) netip.Addr {
	b := mapped(p.Masked().Addr()).As16()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	for i := bits; i < 128; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom16(b)
}

// suggestDimension names the closest dimension to a misspelt one.
func suggestDimension(s string) string {
	best, bd := "", 4
	for _, d := range dimensions {
		if d.GroupOnly {
			continue
		}
		if n := suggest.Distance(strings.ToLower(s), d.Name); n < bd {
			best, bd = d.Name, n
		}
	}
	if best == "" {
		return " (see the list of columns)"
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}
