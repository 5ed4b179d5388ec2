package console

import (
	"fmt"
	"strings"
)

// The filter's tokens: words (columns, keywords, bare values such as 10.0.0.0/8), quoted
// strings, operators and punctuation.

type token struct {
	kind string // word, string, op, ( ) , eof
	text string
	pos  int
}

func lex(s string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')' || c == ',':
			toks = append(toks, token{string(c), string(c), i})
			i++
		case c == '\'' || c == '"':
			j := i + 1
			var b strings.Builder
			for ; j < len(s) && s[j] != c; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, &FilterError{i, "unterminated string"}
			}
			toks = append(toks, token{"string", b.String(), i})
			i = j + 1
		case strings.HasPrefix(s[i:], "!<<"):
			toks = append(toks, token{"op", "!<<", i})
			i += 3
		case strings.HasPrefix(s[i:], "<<") || strings.HasPrefix(s[i:], "<=") || strings.HasPrefix(s[i:], ">=") || strings.HasPrefix(s[i:], "!="):
			toks = append(toks, token{"op", s[i : i+2], i})
			i += 2
		case c == '=' || c == '<' || c == '>':
			toks = append(toks, token{"op", string(c), i})
			i++
		case isWord(c):
			j := i
			for j < len(s) && isWord(s[j]) {
				j++
			}
			toks = append(toks, token{"word", s[i:j], i})
			i = j
		default:
			return nil, &FilterError{i, fmt.Sprintf("unexpected %q", c)}
		}
	}
	return append(toks, token{"eof", "", len(s)}), nil
}

func isWord(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_.:/-%*", c) >= 0
}
