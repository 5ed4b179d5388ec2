package console

import (
	"fmt"
	"net/netip"
	"strings"
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

// suggest names the closest dimension to a misspelt one.
func suggest(s string) string {
	best, bd := "", 4
	for _, d := range dimensions {
		if d.GroupOnly {
			continue
		}
		if n := editDistance(strings.ToLower(s), d.Name); n < bd {
			best, bd = d.Name, n
		}
	}
	if best == "" {
		return " (see the list of columns)"
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
