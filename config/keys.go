package config

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
)

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
