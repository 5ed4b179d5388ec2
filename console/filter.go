package console

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// The filter language (what the filter box accepts), compiled on the server into a SQL
// condition whose every value is a bound parameter and whose every column is a dimension:
//
//	filter := or
//	or     := and { OR and }
//	and    := not { AND not }
//	not    := NOT not | "(" or ")" | cond
//	cond   := column op value | column [NOT] IN "(" value { "," value } ")"
//	op     := = | != | < | <= | > | >= | << | !<< | LIKE | NOT LIKE
//
// Values are numbers, addresses, prefixes (10.0.0.0/8, 2001:db8::/32), protocol names (tcp,
// udp, icmp, ...) or strings in single or double quotes. Operators by kind of column: addresses
// = != << (in prefix) !<< IN; numbers and protocols = != < <= > >= IN; strings = != LIKE IN.
// Keywords are case-insensitive.

// FilterError is a filter the compiler refuses, with the byte offset where it went wrong.
type FilterError struct {
	Pos int
	Msg string
}

func (e *FilterError) Error() string {
	return fmt.Sprintf("filter: at character %d: %s", e.Pos+1, e.Msg)
}

// compiled is a filter as SQL over ${column} placeholders, with its bound parameters.
type compiled struct {
	SQL     string            // "" for an empty filter
	Params  map[string]string // parameter name -> value
	Columns []string          // the packets columns it reads
}

const (
	maxFilterLen   = 4096
	maxFilterConds = 200
)

type parser struct {
	toks   []token
	i      int
	params map[string]string
	cols   []string
	conds  int
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token { t := p.toks[p.i]; p.i++; return t }
func (p *parser) keyword(k string) bool {
	t := p.peek()
	if t.kind == "word" && strings.EqualFold(t.text, k) {
		p.i++
		return true
	}
	return false
}

// compileFilter compiles a filter expression. An empty (or blank) filter is no condition.
func compileFilter(s string) (compiled, error) {
	if len(s) > maxFilterLen {
		return compiled{}, &FilterError{maxFilterLen, fmt.Sprintf("longer than %d characters", maxFilterLen)}
	}
	toks, err := lex(s)
	if err != nil {
		return compiled{}, err
	}
	p := &parser{toks: toks, params: map[string]string{}}
	if p.peek().kind == "eof" {
		return compiled{Params: map[string]string{}}, nil
	}
	sql, err := p.or()
	if err != nil {
		return compiled{}, err
	}
	if t := p.peek(); t.kind != "eof" {
		return compiled{}, &FilterError{t.pos, fmt.Sprintf("expected AND, OR or the end, found %q", t.text)}
	}
	slices.Sort(p.cols)
	return compiled{SQL: sql, Params: p.params, Columns: slices.Compact(p.cols)}, nil
}

func (p *parser) or() (string, error) {
	parts := []string{}
	for {
		s, err := p.and()
		if err != nil {
			return "", err
		}
		parts = append(parts, s)
		if !p.keyword("OR") {
			break
		}
	}
	if len(parts) == 1 {
		return parts[0], nil
	}
	return "(" + strings.Join(parts, " OR ") + ")", nil
}

func (p *parser) and() (string, error) {
	parts := []string{}
	for {
		s, err := p.not()
		if err != nil {
			return "", err
		}
		parts = append(parts, s)
		if !p.keyword("AND") {
			break
		}
	}
	if len(parts) == 1 {
		return parts[0], nil
	}
	return "(" + strings.Join(parts, " AND ") + ")", nil
}

func (p *parser) not() (string, error) {
	if p.keyword("NOT") {
		s, err := p.not()
		return "NOT " + s, err
	}
	if t := p.peek(); t.kind == "(" {
		p.i++
		s, err := p.or()
		if err != nil {
			return "", err
		}
		if t := p.next(); t.kind != ")" {
			return "", &FilterError{t.pos, "expected )"}
		}
		return "(" + s + ")", nil
	}
	return p.cond()
}

func (p *parser) cond() (string, error) {
	t := p.next()
	if t.kind != "word" {
		if t.kind == "eof" {
			return "", &FilterError{t.pos, "expected a column name, found the end of the filter"}
		}
		return "", &FilterError{t.pos, fmt.Sprintf("expected a column name, found %q", t.text)}
	}
	d, ok := dimByName[strings.ToLower(t.text)]
	if !ok || d.GroupOnly {
		return "", &FilterError{t.pos, fmt.Sprintf("unknown column %q%s", t.text, suggestDimension(t.text))}
	}
	if p.conds++; p.conds > maxFilterConds {
		return "", &FilterError{t.pos, fmt.Sprintf("more than %d conditions", maxFilterConds)}
	}
	p.cols = append(p.cols, d.Col)
	c := col(d.Col)
	// [NOT] IN (...), NOT LIKE
	opTok := p.peek()
	var op string
	switch {
	case opTok.kind == "op":
		p.i++
		op = opTok.text
	case p.keyword("IN"):
		op = "IN"
	case p.keyword("LIKE"):
		op = "LIKE"
	case p.keyword("NOT"):
		switch {
		case p.keyword("IN"):
			op = "NOT IN"
		case p.keyword("LIKE"):
			op = "NOT LIKE"
		default:
			return "", &FilterError{p.peek().pos, "expected IN or LIKE after NOT"}
		}
	default:
		return "", &FilterError{opTok.pos, fmt.Sprintf("expected an operator after %s (%s)", d.Name, strings.Join(operators(d.Kind), " "))}
	}
	if !slices.Contains(operators(d.Kind), op) {
		return "", &FilterError{opTok.pos, fmt.Sprintf("%s does not take %s (it takes %s)", d.Name, op, strings.Join(operators(d.Kind), " "))}
	}
	if op == "IN" || op == "NOT IN" {
		if t := p.next(); t.kind != "(" {
			return "", &FilterError{t.pos, "expected ( after IN"}
		}
		var vals []string
		for {
			v, err := p.value(d, "=")
			if err != nil {
				return "", err
			}
			vals = append(vals, v)
			t := p.next()
			if t.kind == ")" {
				break
			}
			if t.kind != "," {
				return "", &FilterError{t.pos, "expected , or ) in the IN list"}
			}
		}
		return c + " " + op + " (" + strings.Join(vals, ", ") + ")", nil
	}
	if op == "<<" || op == "!<<" {
		vt := p.peek()
		pfx, err := parsePrefix(vt)
		if err != nil {
			return "", err
		}
		p.i++
		lo, hi := p.bind("IPv6", mapped(pfx.Masked().Addr()).String()), p.bind("IPv6", lastAddr(pfx).String())
		s := c + " BETWEEN " + lo + " AND " + hi
		if op == "!<<" {
			s = "NOT (" + s + ")"
		}
		return s, nil
	}
	v, err := p.value(d, op)
	if err != nil {
		return "", err
	}
	return c + " " + op + " " + v, nil
}

// operators lists what a kind of column takes.
func operators(kind string) []string {
	switch kind {
	case "addr":
		return []string{"=", "!=", "<<", "!<<", "IN", "NOT IN"}
	case "string":
		return []string{"=", "!=", "LIKE", "NOT LIKE", "IN", "NOT IN"}
	default:
		return []string{"=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN"}
	}
}

func (p *parser) bind(typ, v string) string {
	name := fmt.Sprintf("f%d", len(p.params))
	p.params[name] = v
	return "{" + name + ":" + typ + "}"
}

// value reads one value for column d and returns its bound placeholder.
func (p *parser) value(d *dimension, op string) (string, error) {
	t := p.next()
	if t.kind != "word" && t.kind != "string" {
		return "", &FilterError{t.pos, fmt.Sprintf("expected a value for %s", d.Name)}
	}
	switch d.Kind {
	case "addr":
		a, err := netip.ParseAddr(t.text)
		if err != nil {
			if strings.Contains(t.text, "/") {
				return "", &FilterError{t.pos, fmt.Sprintf("%q is a prefix: use %s << %s", t.text, d.Name, t.text)}
			}
			return "", &FilterError{t.pos, fmt.Sprintf("%q is not an IP address", t.text)}
		}
		return p.bind("IPv6", mapped(a).String()), nil
	case "uint", "proto":
		n, err := strconv.ParseUint(t.text, 10, 64)
		if err != nil && d.Kind == "proto" {
			var ok bool
			if n, ok = protoNames[strings.ToLower(t.text)]; ok {
				err = nil
			}
		}
		if err != nil {
			return "", &FilterError{t.pos, fmt.Sprintf("%q is not a number%s", t.text, map[bool]string{true: " or a protocol name (tcp, udp, icmp, icmpv6, gre, sctp, ...)"}[d.Kind == "proto"])}
		}
		if n > d.Max {
			return "", &FilterError{t.pos, fmt.Sprintf("%s is at most %d", d.Name, d.Max)}
		}
		return p.bind("UInt64", strconv.FormatUint(n, 10)), nil
	default:
		if len(t.text) > 1024 {
			return "", &FilterError{t.pos, "string longer than 1024 characters"}
		}
		return p.bind("String", t.text), nil
	}
}
