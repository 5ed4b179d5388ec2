package schema

import (
	"fmt"
	"strings"
)

// The cluster DDL rewrites statements with regular expressions; where those cannot count
// (parentheses, commas inside quotes or nested calls) these walk the text.

// walkUnquoted calls visit with the index of every byte of s outside quoted text and the
// parenthesis depth after it, until visit returns true. It returns the depth at the end, and
// whether the walk ended inside a quote.
func walkUnquoted(s string, visit func(i, depth int) bool) (depth int, inQuote bool) {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
			continue
		case c == '\'' || c == '`' || c == '"':
			quote = c
			continue
		case c == '(':
			depth++
		case c == ')':
			depth--
		}
		if visit(i, depth) {
			break
		}
	}
	return depth, quote != 0
}

// closingParen returns the index of the parenthesis closing s[0], skipping quoted text.
func closingParen(s string) (int, error) {
	end := -1
	walkUnquoted(s, func(i, depth int) bool {
		if s[i] == ')' && depth == 0 {
			end = i
			return true
		}
		return false
	})
	if end < 0 {
		return 0, fmt.Errorf("unbalanced parentheses in %.60s", s)
	}
	return end, nil
}

// splitTopLevel cuts s at the commas outside parentheses and quotes.
func splitTopLevel(s string) ([]string, error) {
	var out []string
	start := 0
	depth, inQuote := walkUnquoted(s, func(i, depth int) bool {
		if s[i] == ',' && depth == 0 {
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
		return false
	})
	if depth != 0 || inQuote {
		return nil, fmt.Errorf("unbalanced parentheses or quotes in %.60s", s)
	}
	return append(out, strings.TrimSpace(s[start:])), nil
}
