package config

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// expandEnv replaces ${VAR} references in the file's values, after YAML has
// parsed it: a secret that happens to contain YAML syntax (": ", "#", a
// newline) stays one value and cannot change the file's structure, and line
// numbers stay those of the file. Keys and comments are not expanded.
//
// A plain (unquoted) value is typed again after expansion, so "qos: ${QOS}"
// is a number when QOS=0; a quoted value stays a string. A value that
// expands to nothing counts as not written, so its default applies.
func expandEnv(n *yaml.Node, path string, lookup func(string) (string, bool), c *collector) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			expandEnv(n.Content[i+1], joinKey(path, n.Content[i].Value), lookup, c)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			expandEnv(item, fmt.Sprintf("%s[%d]", path, i), lookup, c)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return
		}
		v, err := expand(n.Value, lookup)
		if err != nil {
			c.addLine(n.Line, path, err.Error())
			return
		}
		if v == n.Value {
			return
		}
		n.Value = v
		const explicit = yaml.TaggedStyle | yaml.DoubleQuotedStyle | yaml.SingleQuotedStyle | yaml.LiteralStyle | yaml.FoldedStyle
		if n.Style&explicit != 0 {
			return
		}
		if v == "" {
			n.Tag = "!!null"
			return
		}
		n.Tag = "" // let YAML resolve the type of the new text
		if n.ShortTag() == "!!null" {
			// "null" or "~" from the environment is text, not an absent value.
			n.Tag = "!!str"
		} else {
			n.Tag = n.ShortTag()
		}
	}
	// Alias nodes are skipped: their target is expanded where it is written.
}

// expand replaces in s:
//
//	${NAME}          the variable's value; an error if it is not set
//	${NAME:-default} the value, or default when unset or empty (as in sh)
//	$$               a literal $
//
// A $ before anything else is kept, so "pa$word!" needs no escaping, except
// before a letter or _: "$TOKEN" is almost certainly a reference missing its
// braces, and is reported instead of being written to InfluxDB as a token.
// MQTT's own prefixes "$share/" and "$SYS/" are kept as written.
// The default is taken literally up to the first }.
func expand(s string, lookup func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		s = s[i:]
		var next byte
		if len(s) > 1 {
			next = s[1]
		}
		switch {
		case next == '$':
			b.WriteByte('$')
			s = s[2:]
		case next == '{':
			end := strings.IndexByte(s, '}')
			if end < 0 {
				return "", fmt.Errorf("%s has no closing }: write ${NAME} or ${NAME:-default}, or $$ for a literal $", shorten(s))
			}
			ref := s[2:end]
			name, def, hasDef := strings.Cut(ref, ":-")
			if !isName(name) {
				return "", fmt.Errorf("${%s} is not a variable reference: write ${NAME} or ${NAME:-default} with NAME of letters, digits and _, or $$ for a literal $", ref)
			}
			v, ok := lookup(name)
			switch {
			case hasDef && v == "":
				v = def
			case !ok:
				return "", fmt.Errorf("environment variable %s is not set: set it, or write ${%s:-default}", name, name)
			}
			b.WriteString(v)
			s = s[end+1:]
		case isNameStart(next):
			j := 1
			for j < len(s) && isNameChar(s[j]) {
				j++
			}
			if mqttReserved(s[:j]) && j < len(s) && s[j] == '/' {
				// $share/… and $SYS/… are MQTT's own topic prefixes.
				b.WriteString(s[:j])
				s = s[j:]
				continue
			}
			return "", fmt.Errorf("%s: write ${%s} to use the environment variable, or $$ for a literal $ (a shared subscription is written $share/GROUP/topic, or use the source's share_group key)", s[:j], s[1:j])
		default:
			b.WriteByte('$')
			s = s[1:]
		}
	}
}

// mqttReserved reports whether word (with its $) starts a topic MQTT
// reserves: shared subscriptions ($share) and broker statistics ($SYS).
// Followed by a /, it is kept literally, never read as a variable.
func mqttReserved(word string) bool { return word == "$share" || word == "$SYS" }

func isName(s string) bool {
	if s == "" || !isNameStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isNameChar(s[i]) {
			return false
		}
	}
	return true
}

func isNameStart(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func isNameChar(c byte) bool { return isNameStart(c) || '0' <= c && c <= '9' }

// shorten quotes at most 24 bytes of s for a message.
func shorten(s string) string {
	if len(s) > 24 {
		return fmt.Sprintf("%q…", s[:24])
	}
	return fmt.Sprintf("%q", s)
}
