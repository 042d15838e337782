package config

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// decode fills cfg from the expanded tree and reports what YAML could not
// decode (a word where a number belongs, a key written twice) at its path.
func decode(root *yaml.Node, cfg *Config, c *collector) {
	err := root.Decode(cfg)
	if err == nil {
		return
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		line, msg := syntaxError(err)
		c.addLine(line, "", msg)
		return
	}
	for _, e := range te.Errors {
		line, msg := splitLine(e)
		path := c.tree.pathOf(line, msg)
		c.addLine(line, path, typeMessage(msg, c.tree.node(path)))
	}
}

// pathOf finds the path a yaml.v3 type error is about. The error gives only
// a line and the (shortened) value, and a flow mapping puts several keys on
// one line, so the first node on the line whose value or kind matches wins.
func (t *tree) pathOf(line int, msg string) string {
	paths := t.byLine[line]
	if len(paths) == 0 {
		return ""
	}
	m := unmarshalRE.FindStringSubmatch(msg)
	if m == nil {
		return paths[0]
	}
	for _, p := range paths {
		n := t.nodes[p]
		switch {
		case m[1] == "!!seq" && n.Kind == yaml.SequenceNode,
			m[1] == "!!map" && n.Kind == yaml.MappingNode:
			// Nested mappings share the line: take the one the schema
			// wants to be something else.
			if want := schemaAt(t.schema, p); want == nil || want.Kind != n.Kind {
				return p
			}
		case n.Kind == yaml.ScalarNode && m[2] != "":
			v := m[2]
			if short, ok := strings.CutSuffix(v, "..."); ok && len(n.Value) > 10 {
				if strings.HasPrefix(n.Value, short) {
					return p
				}
			} else if n.Value == v {
				return p
			}
		}
	}
	return paths[0]
}

var (
	lineRE      = regexp.MustCompile(`^line (\d+): (.*)$`)
	unmarshalRE = regexp.MustCompile("^cannot unmarshal (\\S+)(?: `(.*)`)? into (.+)$")
	duplicateRE = regexp.MustCompile(`^mapping key (".*") already defined at line (\d+)$`)
)

// syntaxError turns a yaml.v3 error ("yaml: line 3: mapping values are not
// allowed in this context") into a line and a message.
func syntaxError(err error) (int, string) {
	line, msg := splitLine(strings.TrimPrefix(err.Error(), "yaml: "))
	return line, "YAML syntax: " + msg
}

func splitLine(s string) (int, string) {
	m := lineRE.FindStringSubmatch(s)
	if m == nil {
		return 0, s
	}
	n, _ := strconv.Atoi(m[1])
	return n, m[2]
}

// typeMessage rewords yaml.v3's type errors for an operator, quoting the
// whole value (yaml.v3 cuts it at 7 characters).
func typeMessage(msg string, n *yaml.Node) string {
	if m := duplicateRE.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("key %s is written twice (first on line %s): keep one", m[1], m[2])
	}
	m := unmarshalRE.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	tag, into := m[1], strings.TrimPrefix(m[3], "*")
	var want string
	switch {
	case strings.HasPrefix(into, "[]"):
		want = "a list"
	case strings.Contains(into, ".") && into != "time.Duration":
		want = "a mapping of keys"
	default:
		want = "a single value"
	}
	switch tag {
	case "!!map":
		return "is a mapping of keys, but " + want + " belongs here; see example.yaml"
	case "!!seq":
		return "is a list, but " + want + " belongs here; see example.yaml"
	}
	val := m[2]
	if n != nil && n.Kind == yaml.ScalarNode {
		val = n.Value // yaml.v3 shortens it
	}
	switch {
	case into == "int":
		return fmt.Sprintf("%q is not a whole number", val)
	case into == "time.Duration":
		return fmt.Sprintf("%q is not a duration: write a number with a unit, e.g. 100ms, 10s or 5m", val)
	case into == "bool":
		return fmt.Sprintf("%q is not true or false", val)
	case into == "float64":
		return fmt.Sprintf("%q is not a number", val)
	case strings.HasPrefix(into, "[]"):
		return fmt.Sprintf("%q is a single value, but a list belongs here: write [%s] or one item per line starting with -", val, val)
	case strings.Contains(into, "."):
		return "is a single value, but a mapping of keys belongs here; see example.yaml"
	}
	return msg
}
