package config

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/sensorgate/sensorgate/decoders"
	"github.com/sensorgate/sensorgate/gateway/lorawan"
	"github.com/sensorgate/sensorgate/gateway/mqtt"
	"github.com/sensorgate/sensorgate/gateway/ttsstorage"
	"github.com/sensorgate/sensorgate/gateway/webhook"
)

// schema is the key tree of Config. It is built by encoding a sample value:
// the YAML encoder writes every field (none is omitempty), so the key set
// comes from the struct tags of whichever package owns each section, and a
// key added there is known here without a second list to keep in step.
// Its sources item holds the keys of every source type; sourceSchemas has
// each type's own.
func schema() (*yaml.Node, error) {
	var n yaml.Node
	if err := n.Encode(&Config{}); err != nil {
		return nil, fmt.Errorf("config: build key schema: %w", err)
	}
	all, err := sourceSchema("", "")
	if err != nil {
		return nil, err
	}
	root := &n
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if src := lookupKey(root, "sources"); src != nil {
		*src = yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{all}}
	}
	return &n, nil
}

// sourceSchema is the key mapping of a source of the type (and, for mqtt,
// the format: gateway-bridge adds the frame keys); an empty or unknown
// type gives every source key, so a typo is still caught there.
func sourceSchema(typ, format string) (*yaml.Node, error) {
	mq := &mqtt.Config{Map: []decoders.Mapping{{}}}
	hook := &webhook.Config{Map: []decoders.Mapping{{}}}
	var n *yaml.Node
	var err error
	storage := storageKeys{&ttsstorage.Config{}}
	switch {
	case typ == SourceMQTT && format == mqtt.FormatGatewayBridge:
		n, err = mergedMapping(mq, &lorawan.FrameConfig{})
	case typ == SourceMQTT && format == mqtt.FormatTTSV3:
		n, err = mergedMapping(mq, storage)
	case typ == SourceMQTT:
		n, err = mergedMapping(mq)
	case typ == SourceSemtechUDP:
		n, err = mergedMapping(&lorawan.Config{})
	case typ == SourceHTTP:
		n, err = mergedMapping(hook)
	default:
		n, err = mergedMapping(mq, &lorawan.Config{}, hook, storage)
	}
	if err != nil {
		return nil, fmt.Errorf("config: build key schema of %s sources: %w", typ, err)
	}
	return n, nil
}

// sourceKinds are the source schemas an entry can have, described as
// problems name them.
var sourceKinds = []struct{ typ, format, desc string }{
	{SourceMQTT, "", "mqtt sources"},
	{SourceMQTT, mqtt.FormatGatewayBridge, "mqtt sources of format gateway-bridge"},
	{SourceMQTT, mqtt.FormatTTSV3, "mqtt sources of format tts-v3"},
	{SourceSemtechUDP, "", "semtech-udp sources"},
	{SourceHTTP, "", "http sources"},
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
	w := keyWalker{c: c, sources: map[string]*yaml.Node{}}
	for _, k := range append(sourceKinds, struct{ typ, format, desc string }{}) {
		if w.sources[k.typ+"/"+k.format], err = sourceSchema(k.typ, k.format); err != nil {
			return err
		}
	}
	w.walk(s, root, "")
	return nil
}

// keyWalker checks a node tree against the schema.
type keyWalker struct {
	c *collector
	// sources holds the schema of each source kind by "type/format"
	// ("mqtt/", "mqtt/gateway-bridge", "semtech-udp/"; "/" is all keys).
	sources map[string]*yaml.Node
}

func (w keyWalker) walk(s, n *yaml.Node, path string) {
	c := w.c
	switch {
	case s.Kind == yaml.MappingNode && n.Kind == yaml.MappingNode:
		dropDuplicates(n, path, c)
		item, kind := w.sourceItem(path, n)
		if item != nil {
			s = item
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.Value == "<<" {
				continue // merge key: the merged mapping is checked where written
			}
			p := joinKey(path, k.Value)
			sv := lookupKey(s, k.Value)
			if sv == nil || k.Kind != yaml.ScalarNode {
				msg := unknownKey(s, k.Value)
				if item != nil {
					msg = w.foreignSourceKey(kind, k.Value, msg)
				}
				c.addLine(k.Line, p, msg)
				continue
			}
			w.walk(sv, v, p)
		}
	case s.Kind == yaml.SequenceNode && n.Kind == yaml.SequenceNode && len(s.Content) > 0:
		for i, item := range n.Content {
			w.walk(s.Content[0], item, fmt.Sprintf("%s[%d]", path, i))
		}
	}
	// Other shapes (a list where a mapping belongs) are the decoder's to
	// report.
}

// sourceItem returns the schema of the source entry n at path (nil when
// path is not an entry of sources) and its kind, "type/format".
func (w keyWalker) sourceItem(path string, n *yaml.Node) (*yaml.Node, string) {
	if !strings.HasPrefix(path, "sources[") || strings.ContainsAny(path[len("sources["):], ".[") {
		return nil, ""
	}
	var head struct {
		Type   string `yaml:"type"`
		Format string `yaml:"format"`
	}
	_ = n.Decode(&head) // a type or format of the wrong shape is the decoder's to report
	if head.Type != SourceMQTT || head.Format != mqtt.FormatGatewayBridge && head.Format != mqtt.FormatTTSV3 {
		head.Format = ""
	}
	kind := head.Type + "/" + head.Format
	if s, ok := w.sources[kind]; ok {
		return s, kind
	}
	return w.sources["/"], "/"
}

// foreignSourceKey says which sources a key belongs to when it is a source
// key, only not of this source's kind (listen in an mqtt source).
func (w keyWalker) foreignSourceKey(kind, key, msg string) string {
	var owners []string
	allMQTT := false
	for _, k := range sourceKinds {
		if lookupKey(w.sources[k.typ+"/"+k.format], key) == nil || (allMQTT && k.typ == SourceMQTT) {
			continue
		}
		owners = append(owners, k.desc)
		allMQTT = allMQTT || (k.typ == SourceMQTT && k.format == "")
	}
	if len(owners) == 0 || kind == "/" {
		return msg
	}
	typ, format, _ := strings.Cut(kind, "/")
	this := "type " + typ
	if format != "" {
		this += ", format " + format
	}
	return fmt.Sprintf("key %q does not apply to this source (%s): it is a key of %s", key, this, strings.Join(owners, " and "))
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
