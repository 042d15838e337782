package config

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
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

// text is the value as written in the file at path, or def when there is
// none (a Config built in code): "1.5" reads better than the 1 YAML made of
// it.
func (t *tree) text(path, def string) string {
	if n := t.node(path); n != nil && n.Kind == yaml.ScalarNode {
		return n.Value
	}
	return def
}
