package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Problem is one thing wrong with a config file.
type Problem struct {
	// Line is the 1-based line in the file, or 0 when no line applies (a
	// section that is missing altogether, or a Config built in code).
	Line int
	// Path names the key, as in sources[1].format; empty for problems of
	// the file as a whole, such as YAML syntax errors.
	Path string
	// Msg says what is wrong and what to do about it.
	Msg string
}

// Problems is every problem found in one config file. Load, Parse and
// Validate return it as their error; use errors.As to get the list.
type Problems struct {
	File string    // the file name, as given to Load or Parse
	List []Problem // sorted by line
}

// Error prints one problem per line as FILE:LINE: path: message, the form
// editors and CI logs turn into links. The line is left out when it is 0
// and the path when it is empty; a Config built in code (no file) prints
// path: message.
func (p *Problems) Error() string {
	var b strings.Builder
	for i, pr := range p.List {
		if i > 0 {
			b.WriteByte('\n')
		}
		if p.File != "" {
			b.WriteString(p.File)
			if pr.Line > 0 {
				fmt.Fprintf(&b, ":%d", pr.Line)
			}
			b.WriteString(": ")
		}
		if pr.Path != "" {
			b.WriteString(pr.Path)
			b.WriteString(": ")
		}
		b.WriteString(pr.Msg)
	}
	return b.String()
}

// collector gathers problems while a file is checked. It keeps only the
// first problem of each path: a value YAML could not decode must not also
// be reported as, say, below its minimum.
type collector struct {
	tree *tree // nil for a Config built in code: no lines
	list []Problem
	seen map[string]bool
}

func newCollector(t *tree) *collector {
	return &collector{tree: t, seen: map[string]bool{}}
}

// add records a problem at path, on the line of path or of its nearest
// ancestor that the file has.
func (c *collector) add(path, format string, args ...any) {
	c.addLine(c.tree.line(path), path, fmt.Sprintf(format, args...))
}

func (c *collector) addLine(line int, path, msg string) {
	if path != "" {
		if c.seen[path] {
			return
		}
		c.seen[path] = true
	}
	c.list = append(c.list, Problem{Line: line, Path: path, Msg: msg})
}

// err returns the problems sorted by line, or nil when there are none. The
// sort is stable so problems of one line keep the order they were found in.
func (c *collector) err(file string) error {
	if len(c.list) == 0 {
		return nil
	}
	list := slices.Clone(c.list)
	slices.SortStableFunc(list, func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) })
	return &Problems{File: file, List: list}
}
