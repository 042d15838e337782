package config

import (
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// FileWarnings are what an operator should hear about the config file at
// path beyond its problems: a file that group or others may read while it
// holds a secret written into it. A ${NAME} reference is not a secret in
// the file (the environment holds it), but a ${NAME:-default}'s default
// is. The daemon logs these at start, validate prints them; neither stops,
// since the file is still right.
func FileWarnings(path string) []string {
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm()&0o044 == 0 {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	keys := literalSecrets(b)
	if len(keys) == 0 {
		return nil
	}
	who := "others"
	if st.Mode().Perm()&0o004 == 0 {
		who = "its group"
	}
	return []string{fmt.Sprintf("config file %s (mode %04o) is readable by %s and holds secrets written into it (%s): chmod 600 it, or move them to the environment with ${NAME}",
		path, st.Mode().Perm(), who, strings.Join(keys, ", "))}
}

// literalSecrets lists the secret keys of a config file (tokens,
// passwords) whose value holds text of its own rather than only
// environment references.
func literalSecrets(b []byte) []string {
	var doc yaml.Node
	if yaml.Unmarshal(b, &doc) != nil || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil // not a config: Load says why
	}
	root := doc.Content[0]
	var keys []string
	check := func(path string, n *yaml.Node) {
		if n == nil || n.Kind != yaml.ScalarNode {
			return
		}
		// Expanded in an empty environment, only the file's own text
		// (literal parts and defaults) is left.
		v, err := expand(n.Value, func(string) (string, bool) { return "", true })
		if err == nil && strings.TrimSpace(v) != "" {
			keys = append(keys, path)
		}
	}
	section := func(name string) *yaml.Node {
		if n := lookupKey(root, name); n != nil && n.Kind == yaml.MappingNode {
			return n
		}
		return nil
	}
	if h := section("http"); h != nil {
		check("http.token", lookupKey(h, "token"))
	}
	if in := section("influx"); in != nil {
		check("influx.token", lookupKey(in, "token"))
	}
	if src := lookupKey(root, "sources"); src != nil && src.Kind == yaml.SequenceNode {
		for i, s := range src.Content {
			if s.Kind == yaml.MappingNode {
				check(fmt.Sprintf("sources[%d].password", i), lookupKey(s, "password"))
				if st := lookupKey(s, "storage"); st != nil && st.Kind == yaml.MappingNode {
					check(fmt.Sprintf("sources[%d].storage.api_key", i), lookupKey(st, "api_key"))
				}
				if a := lookupKey(s, "auth"); a != nil && a.Kind == yaml.MappingNode {
					for _, k := range []string{"value", "password", "bearer_token"} {
						check(fmt.Sprintf("sources[%d].auth.%s", i, k), lookupKey(a, k))
					}
				}
			}
		}
	}
	return keys
}
