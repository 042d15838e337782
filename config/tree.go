package config

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
)

// tree indexes the file's YAML nodes by path (sources[1].format), so that a
// check that runs on the decoded Config can still name the line a value was
// written on, and tell an absent key from one set to zero.
type tree struct {
	nodes  map[string]*yaml.Node // path → value node
	lines  map[string]int        // path → line of its key, or of the list item
	byLine map[int][]string      // line → paths written on it, in order
	schema *yaml.Node            // Config's key tree, once checkKeys ran
}

func newTree(root *yaml.Node) *tree {
	t := &tree{nodes: map[string]*yaml.Node{}, lines: map[string]int{}, byLine: map[int][]string{}}
	if root != nil {
		t.index("", 0, root)
	}
	return t
}

func (t *tree) index(path string, line int, n *yaml.Node) {
	if path != "" {
		if _, dup := t.nodes[path]; !dup {
			t.nodes[path], t.lines[path] = n, line
		}
		t.byLine[line] = append(t.byLine[line], path)
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			t.index(joinKey(path, k.Value), k.Line, n.Content[i+1])
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			t.index(fmt.Sprintf("%s[%d]", path, i), item.Line, item)
		}
	}
	// Aliases are not followed: their target is indexed where it is
	// written, and following them could loop.
}

// line is the line of path, or of its nearest ancestor in the file (the
// list item of a source without a broker), or 0.
func (t *tree) line(path string) int {
	if t == nil {
		return 0
	}
	for p := path; p != ""; p = parent(p) {
		if l, ok := t.lines[p]; ok {
			return l
		}
	}
	return 0
}

// node is the value node at path with aliases resolved, or nil.
func (t *tree) node(path string) *yaml.Node {
	if t == nil {
		return nil
	}
	n := t.nodes[path]
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

// present reports whether the file gives path a value; a key written with
// no value (null) counts as absent, so its default applies.
func (t *tree) present(path string) bool {
	n := t.node(path)
	return n != nil && !(n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// isFloat reports whether path holds a number with a fraction; YAML decodes
// 1.5 into an int field as 1 without complaint.
func (t *tree) isFloat(path string) bool {
	n := t.node(path)
	return n != nil && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!float"
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// parent strips the last key or index: sources[1].json.time → sources[1].json
// → sources[1] → sources → "".
func parent(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// schema is the key tree of Config. It is built by encoding a sample value:
// the YAML encoder writes every field (none is omitempty), so the key set
// comes from the struct tags of whichever package owns each section, and a
// key added there is known here without a second list to keep in step.
func schema() (*yaml.Node, error) {
	sample := Config{Sources: []mqtt.Config{{Map: []decoders.Mapping{{}}}}}
	var n yaml.Node
	if err := n.Encode(&sample); err != nil {
		return nil, fmt.Errorf("config: build key schema: %w", err)
	}
	return &n, nil
}

// schemaAt is the schema node for path (list indices stand for the list's
// one sample item), or nil when the schema has no such key.
func schemaAt(s *yaml.Node, path string) *yaml.Node {
	for s != nil && s.Kind == yaml.DocumentNode && len(s.Content) == 1 {
		s = s.Content[0]
	}
	for path != "" && s != nil {
		var seg string
		if path[0] == '[' {
			end := strings.IndexByte(path, ']')
			if end < 0 || s.Kind != yaml.SequenceNode || len(s.Content) == 0 {
				return nil
			}
			s, path = s.Content[0], path[end+1:]
			continue
		}
		path = strings.TrimPrefix(path, ".")
		i := strings.IndexAny(path, ".[")
		if i < 0 {
			i = len(path)
		}
		seg, path = path[:i], path[i:]
		if s.Kind != yaml.MappingNode {
			return nil
		}
		s = lookupKey(s, seg)
	}
	return s
}

// checkKeys reports every key the schema does not know, with its line. It
// does what yaml.v3's Decoder.KnownFields does, on the node tree: the
// decoder option only works on raw bytes, and decoding is done on the
// expanded tree so that lines stay those of the file.
func checkKeys(root *yaml.Node, c *collector) error {
	s, err := schema()
	if err != nil {
		return err
	}
	c.tree.schema = s
	walkKeys(s, root, "", c)
	return nil
}

func walkKeys(s, n *yaml.Node, path string, c *collector) {
	switch {
	case s.Kind == yaml.MappingNode && n.Kind == yaml.MappingNode:
		dropDuplicates(n, path, c)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.Value == "<<" {
				continue // merge key: the merged mapping is checked where written
			}
			p := joinKey(path, k.Value)
			sv := lookupKey(s, k.Value)
			if sv == nil || k.Kind != yaml.ScalarNode {
				c.addLine(k.Line, p, unknownKey(s, k.Value))
				continue
			}
			walkKeys(sv, v, p, c)
		}
	case s.Kind == yaml.SequenceNode && n.Kind == yaml.SequenceNode && len(s.Content) > 0:
		for i, item := range n.Content {
			walkKeys(s.Content[0], item, fmt.Sprintf("%s[%d]", path, i), c)
		}
	}
	// Other shapes (a list where a mapping belongs) are the decoder's to
	// report.
}

// dropDuplicates reports each key written twice in mapping n and removes
// the later copies. yaml.v3 refuses to decode a mapping with a duplicate
// key at all, which would add a "missing" problem for each of its other
// keys; with the copies gone only the real problem is reported.
func dropDuplicates(n *yaml.Node, path string, c *collector) {
	first := map[string]int{}
	kept := n.Content[:0:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if k.Kind == yaml.ScalarNode && k.Value != "<<" {
			if line, dup := first[k.Value]; dup {
				// Appended directly: the first copy's value is still checked.
				c.list = append(c.list, Problem{Line: k.Line, Path: joinKey(path, k.Value),
					Msg: fmt.Sprintf("key %q is written twice (first on line %d): keep one", k.Value, line)})
				continue
			}
			first[k.Value] = k.Line
		}
		kept = append(kept, k, n.Content[i+1])
	}
	n.Content = kept
}

func lookupKey(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func unknownKey(s *yaml.Node, key string) string {
	var keys []string
	for i := 0; i < len(s.Content); i += 2 {
		keys = append(keys, s.Content[i].Value)
	}
	if near := closest(key, keys); near != "" {
		return fmt.Sprintf("unknown key %q: did you mean %q?", key, near)
	}
	return fmt.Sprintf("unknown key %q: the keys here are %s", key, strings.Join(keys, ", "))
}

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

// closest returns the candidate nearest to s, if it is near enough to be a
// typo (about one slip per six letters), else "".
func closest(s string, candidates []string) string {
	best, bestD := "", 2+len(s)/6
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(s), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance counts the insertions, deletions, substitutions and swaps of
// neighbours that turn a into b (optimal string alignment distance over
// bytes). Swaps count once because "qso" for "qos" is one slip. Inputs are
// short keys, so the quadratic cost does not matter.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// orList writes "a, b, c or d".
func orList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// text is the value as written in the file at path, or def when there is
// none (a Config built in code): "1.5" reads better than the 1 YAML made of
// it.
func (t *tree) text(path, def string) string {
	if n := t.node(path); n != nil && n.Kind == yaml.ScalarNode {
		return n.Value
	}
	return def
}
